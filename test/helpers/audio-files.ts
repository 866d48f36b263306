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
  const file = Buffer.alloc(8 + 34 + 64 + Math.round(seconds * AUDIO_BYTES_PER_SECOND));
  file.write("fLaC", 0, "ascii");
  file[4] = 0x80; // last metadata block, type 0 (STREAMINFO)
  file.writeUIntBE(34, 5, 3);
  const info = 8;
  const samples = Math.round(seconds * sampleRate);
  // 20 bits sample rate, 3 bits channels - 1, 5 bits bits-per-sample - 1, 36 bits total samples.
  file[info + 10] = (sampleRate >> 12) & 0xff;
  file[info + 11] = (sampleRate >> 4) & 0xff;
  file[info + 12] = ((sampleRate & 0x0f) << 4) | (0 << 1) | (15 >> 4);
  file[info + 13] = ((15 & 0x0f) << 4) | Math.floor(samples / 2 ** 32);
  file.writeUInt32BE(samples % 2 ** 32, info + 14);
  return file;
}

/** What a file of a compressed format built here holds per second of audio: 8 kbit/s, a low speech rate. */
const AUDIO_BYTES_PER_SECOND = 1_000;

/**
 * An Ogg Opus file: the OpusHead page, a page of audio (1 KB a second, zeros here) and a last page whose granule
 * position ends the stream at `seconds`.
 */
export function oggOpusFile(seconds: number, preSkip = 312): Buffer {
  const page = (granule: bigint, packet: Buffer): Buffer => {
    const header = Buffer.alloc(27 + 1);
    header.write("OggS", 0, "ascii");
    header.writeBigUInt64LE(granule, 6);
    header[26] = 1; // one segment
    header[27] = packet.length;
    return Buffer.concat([header, packet]);
  };
  const head = Buffer.alloc(19);
  head.write("OpusHead", 0, "ascii");
  head[8] = 1;
  head[9] = 1;
  head.writeUInt16LE(preSkip, 10);
  head.writeUInt32LE(48_000, 12);
  const last = BigInt(Math.round(seconds * 48_000) + preSkip);
  const audio = Buffer.alloc(Math.round(seconds * AUDIO_BYTES_PER_SECOND));
  return Buffer.concat([page(0n, head), page(0n, audio), page(last, Buffer.alloc(100))]);
}
