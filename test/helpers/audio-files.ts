// Small audio files built in the test (no binary fixtures): silent, but with the container headers a real encoder
// writes, so that src/limits/audio-duration.ts reads them as it reads a recording.

/** A 16-bit PCM WAV of `seconds` of silence (mono). */
export function wavFile(seconds: number, sampleRate = 8_000): Buffer {
  const dataBytes = Math.round(seconds * sampleRate) * 2;
  const file = Buffer.alloc(44 + dataBytes);
  file.write("RIFF", 0, "ascii");
  file.writeUInt32LE(36 + dataBytes, 4);
  file.write("WAVE", 8, "ascii");
  file.write("fmt ", 12, "ascii");
  file.writeUInt32LE(16, 16);
  file.writeUInt16LE(1, 20); // PCM
  file.writeUInt16LE(1, 22); // mono
  file.writeUInt32LE(sampleRate, 24);
  file.writeUInt32LE(sampleRate * 2, 28); // byte rate
  file.writeUInt16LE(2, 32); // block align
  file.writeUInt16LE(16, 34); // bits per sample
  file.write("data", 36, "ascii");
  file.writeUInt32LE(dataBytes, 40);
  return file;
}

/** MPEG-1 layer III, 32 kbit/s, 32 kHz, mono: 144 bytes and 1152 samples (36 ms) per frame, no padding. */
const MP3_HEADER = 0xff_fb_18_c0;
const MP3_FRAME_BYTES = 144;
const MP3_FRAME_SECONDS = 1152 / 32_000;

/** A constant-bit-rate MP3 of about `seconds` (whole frames), after an ID3v2 tag as most encoders write one. */
export function mp3File(seconds: number, { xing = false }: { xing?: boolean } = {}): Buffer {
  const frames = Math.round(seconds / MP3_FRAME_SECONDS);
  const id3 = Buffer.alloc(10 + 20);
  id3.write("ID3", 0, "ascii");
  id3[3] = 4;
  id3[9] = 20; // syncsafe size of what follows the header
  const frameAt = (index: number, body: Buffer): void => {
    body.writeUInt32BE(MP3_HEADER, index * MP3_FRAME_BYTES);
  };
  // A Xing header takes a frame of its own (silent, counted out of the duration by its frame count).
  const total = frames + (xing ? 1 : 0);
  const audio = Buffer.alloc(total * MP3_FRAME_BYTES);
  for (let index = 0; index < total; index += 1) frameAt(index, audio);
  if (xing) {
    // Mono MPEG-1: 17 bytes of side information after the 4-byte header.
    audio.write("Xing", 4 + 17, "ascii");
    audio.writeUInt32BE(1, 4 + 17 + 4); // flags: frame count present
    audio.writeUInt32BE(frames, 4 + 17 + 8);
  }
  return Buffer.concat([id3, audio]);
}

/**
 * A FLAC file's signature and STREAMINFO block for `seconds` at 16 kHz, then as many bytes as a quiet recording's
 * frames take (1 KB a second, zeros here: the reader never decodes them, but it does not believe a header claiming
 * more seconds than the bytes could hold).
 */
export function flacFile(seconds: number, sampleRate = 16_000): Buffer {
  const header = Buffer.alloc(8);
  header.write("fLaC", 0, "ascii");
  header[4] = 0x80; // last metadata block, type 0 (STREAMINFO)
  header.writeUIntBE(34, 5, 3);
  const frames = Buffer.alloc(64 + Math.round(seconds * AUDIO_BYTES_PER_SECOND));
  return Buffer.concat([header, flacStreamInfo(seconds, sampleRate), frames]);
}

/** A STREAMINFO block's 34 bytes: `seconds` at `sampleRate`, mono, 16-bit. */
function flacStreamInfo(seconds: number, sampleRate: number): Buffer {
  const info = Buffer.alloc(34);
  const samples = Math.round(seconds * sampleRate);
  // 20 bits sample rate, 3 bits channels - 1, 5 bits bits-per-sample - 1, 36 bits total samples.
  info[10] = (sampleRate >> 12) & 0xff;
  info[11] = (sampleRate >> 4) & 0xff;
  info[12] = ((sampleRate & 0x0f) << 4) | (0 << 1) | (15 >> 4);
  info[13] = ((15 & 0x0f) << 4) | Math.floor(samples / 2 ** 32);
  info.writeUInt32BE(samples % 2 ** 32, 14);
  return info;
}

/** What a file of a compressed format built here holds per second of audio: 8 kbit/s, a low speech rate. */
const AUDIO_BYTES_PER_SECOND = 1_000;

/**
 * An Ogg Opus file: the OpusHead page, a page of audio (1 KB a second, zeros here) and a last page whose granule
 * position ends the stream at `seconds`.
 */
export function oggOpusFile(seconds: number, preSkip = 312): Buffer {
  const head = Buffer.alloc(19);
  head.write("OpusHead", 0, "ascii");
  head[8] = 1;
  head[9] = 1;
  head.writeUInt16LE(preSkip, 10);
  head.writeUInt32LE(48_000, 12);
  const last = BigInt(Math.round(seconds * 48_000) + preSkip);
  const audio = Buffer.alloc(Math.round(seconds * AUDIO_BYTES_PER_SECOND));
  return Buffer.concat([oggPage(0n, head), oggPage(0n, audio), oggPage(last, Buffer.alloc(100))]);
}

/** An Ogg page holding one packet (its lacing value only right below 255 bytes: the reader never reads it). */
function oggPage(granule: bigint, packet: Buffer): Buffer {
  const header = Buffer.alloc(27 + 1);
  header.write("OggS", 0, "ascii");
  header.writeBigUInt64LE(granule, 6);
  header[26] = 1; // one segment
  header[27] = Math.min(packet.length, 255);
  return Buffer.concat([header, packet]);
}

/**
 * An Ogg FLAC file (FLAC-to-Ogg mapping): the first packet (0x7F "FLAC", version 1.0, "fLaC", STREAMINFO) at
 * `sampleRate`, a page of frames (1 KB a second) and a last page whose granule (a sample count) ends at `seconds`.
 */
export function oggFlacFile(seconds: number, sampleRate = 16_000): Buffer {
  const mapping = Buffer.from([0x7f, 0x46, 0x4c, 0x41, 0x43, 1, 0, 0, 0]);
  const blockHeader = Buffer.from([0x80, 0, 0, 34]); // last metadata block, STREAMINFO, 34 bytes
  const first = Buffer.concat([mapping, Buffer.from("fLaC", "ascii"), blockHeader, flacStreamInfo(0, sampleRate)]);
  const audio = Buffer.alloc(Math.round(seconds * AUDIO_BYTES_PER_SECOND));
  const last = BigInt(Math.round(seconds * sampleRate));
  return Buffer.concat([oggPage(0n, first), oggPage(0n, audio), oggPage(last, Buffer.alloc(100))]);
}

/**
 * An AAC-LC file in ADTS (`.aac`), mono, `bytesPerSecond` of frames (each 1,024 samples at `sampleRate`, one raw data
 * block), after an ID3v2 tag as some encoders write one.
 */
export function adtsFile(seconds: number, { sampleRate = 16_000, bytesPerSecond = 4_000 } = {}): Buffer {
  const rateIndex = ADTS_RATES.indexOf(sampleRate);
  if (rateIndex < 0) throw new Error(`no ADTS rate ${sampleRate}`);
  const frameCount = Math.round((seconds * sampleRate) / 1_024);
  const frameBytes = Math.max(8, Math.round((bytesPerSecond * 1_024) / sampleRate));
  const frames = Buffer.alloc(frameCount * frameBytes);
  for (let index = 0; index < frameCount; index += 1) {
    const at = index * frameBytes;
    frames[at] = 0xff;
    frames[at + 1] = 0xf1; // MPEG-4, layer 0, no CRC
    frames[at + 2] = (1 << 6) | (rateIndex << 2); // AAC LC, the rate, channel configuration's high bit 0
    frames[at + 3] = (1 << 6) | ((frameBytes >> 11) & 0x03); // one channel
    frames[at + 4] = (frameBytes >> 3) & 0xff;
    frames[at + 5] = ((frameBytes & 0x07) << 5) | 0x1f; // buffer fullness 0x7FF: variable bit rate
    frames[at + 6] = 0xfc; // one raw data block
  }
  const id3 = Buffer.alloc(10 + 20);
  id3.write("ID3", 0, "ascii");
  id3[3] = 4;
  id3[9] = 20;
  return Buffer.concat([id3, frames]);
}

const ADTS_RATES = [96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000];

/** What shapes a WebM file's timing. */
export interface WebmOptions {
  /** Opus bytes a second (MediaRecorder's default is around 128 kbit/s: 16,000). */
  readonly bytesPerSecond?: number;
  /** The Segment Info's Duration in ms, as a muxer that seeks back writes it; none (a live recording) by default. */
  readonly durationMs?: number;
  /** Clusters of known size (a muxer's) instead of unknown size (MediaRecorder's, written live). */
  readonly isSized?: boolean;
  /** CodecID of the audio track. */
  readonly codecId?: string;
  /** Bytes of an extra (video) track's blocks a second, on a second track of type video. */
  readonly videoBytesPerSecond?: number;
}

/**
 * A WebM as a browser's MediaRecorder writes it (`audio/webm;codecs=opus`): the EBML header, a Segment of unknown size,
 * Info (TimecodeScale 1 ms, no Duration), Tracks (one A_OPUS track), then Clusters of unknown size every 5 s, each a
 * Timecode and 20 ms SimpleBlocks of silence-sized payloads.
 */
export function webmFile(seconds: number, options: WebmOptions = {}): Buffer {
  const bytesPerSecond = options.bytesPerSecond ?? 16_000;
  const isSized = options.isSized ?? false;
  const audioTrack = ebml(0xae, [
    ebml(0xd7, Buffer.from([1])),
    ebml(0x83, Buffer.from([2])),
    ebml(0x86, Buffer.from(options.codecId ?? "A_OPUS", "ascii")),
  ]);
  const videoTrack = ebml(0xae, [
    ebml(0xd7, Buffer.from([2])),
    ebml(0x83, Buffer.from([1])),
    ebml(0x86, Buffer.from("V_VP8", "ascii")),
  ]);
  const timecodeScale = Buffer.alloc(3);
  timecodeScale.writeUIntBE(1_000_000, 0, 3);
  const info = [ebml(0x2ad7b1, timecodeScale), ebml(0x4d80, Buffer.from("gateway-test", "ascii"))];
  if (options.durationMs !== undefined) {
    const duration = Buffer.alloc(8);
    duration.writeDoubleBE(options.durationMs);
    info.push(ebml(0x4489, duration));
  }
  const clusters: Buffer[] = [];
  const frameMs = 20;
  const frames = Math.round((seconds * 1_000) / frameMs);
  const clusterFrames = 250; // 5 s
  const payload = Buffer.alloc(Math.max(1, Math.round((bytesPerSecond * frameMs) / 1_000)));
  const videoPayload = Buffer.alloc(Math.round(((options.videoBytesPerSecond ?? 0) * frameMs) / 1_000));
  for (let first = 0; first < frames; first += clusterFrames) {
    const clusterMs = first * frameMs;
    const timecode = Buffer.alloc(4);
    timecode.writeUInt32BE(clusterMs);
    const children = [ebml(0xe7, timecode)];
    for (let index = first; index < Math.min(frames, first + clusterFrames); index += 1) {
      children.push(simpleBlock(1, (index - first) * frameMs, payload));
      if (videoPayload.length > 0) children.push(simpleBlock(2, (index - first) * frameMs, videoPayload));
    }
    clusters.push(isSized ? ebml(0x1f43b675, children) : ebml(0x1f43b675, children, { isSizeUnknown: true }));
  }
  const tracks = ebml(0x1654ae6b, videoPayload.length > 0 ? [audioTrack, videoTrack] : [audioTrack]);
  const header = ebml(0x1a45dfa3, [ebml(0x4286, Buffer.from([1])), ebml(0x4282, Buffer.from("webm", "ascii"))]);
  const segment = ebml(0x18538067, [ebml(0x1549a966, info), tracks, ...clusters], { isSizeUnknown: true });
  return Buffer.concat([header, segment]);
}

function simpleBlock(track: number, relativeMs: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x80 | track; // track number as a 1-byte vint
  head.writeInt16BE(relativeMs, 1);
  head[3] = 0x80; // keyframe
  return ebml(0xa3, [head, payload]);
}

/** An EBML element: its ID's bytes, an 8-byte size (or the unknown size, all ones), its body. */
function ebml(id: number, body: Buffer | readonly Buffer[], { isSizeUnknown = false } = {}): Buffer {
  const idBytes = Buffer.alloc(4);
  idBytes.writeUInt32BE(id);
  const idStart = idBytes.findIndex((byte) => byte !== 0);
  const content = Buffer.isBuffer(body) ? body : Buffer.concat(body);
  const size = Buffer.alloc(8);
  if (isSizeUnknown) size.fill(0xff, 1);
  else size.writeBigUInt64BE(BigInt(content.length), 0);
  size[0] = 0x01; // 8-byte length marker
  return Buffer.concat([idBytes.subarray(idStart), size, content]);
}
