// How many seconds of audio an upload holds, for the audio-second budgets (`ash`, `asd`; docs/limits.md "Audio
// seconds"): read from the container's header where that is cheap and exact, else estimated from the byte size.
//
// Why not a library: `music-metadata` reads every format but is an ESM package of ~20 modules with its own
// dependencies (strtok3, token-types, file-type, ...), loaded and kept in memory by a process that mostly serves
// chat. The few header fields a duration needs are read here in one pass over at most the first and last 64 KB of
// the file (or its first MAX_CHUNKS WAV chunks or MP4 boxes; a WebM's last MB, matroska-duration.ts; an ADTS file's
// frame headers), without copying it. A format not read here (AMR, ...) is estimated.
//
// Pure: no I/O, no clock.
import { isRecord } from "../is-record.ts";
import { matroskaDuration } from "./matroska-duration.ts";

/** An upload's duration and where it came from: the container's header (`header`) or the byte size (`estimate`). */
export interface AudioDuration {
  readonly seconds: number;
  readonly source: "header" | "estimate";
  /**
   * The container that was read (`wav`, `flac`, `mp3`, `ogg`, `mp4`, `webm`, `matroska`, `aac`), or `unknown` for an
   * estimate.
   */
  readonly format: string;
  /**
   * The most seconds its bytes can hold (MIN_BYTES_PER_SECOND): the bound of the header's word, and of the
   * `duration` an answer reports for it (reportedAudioSeconds), which a provider reading the same hostile header
   * may repeat.
   */
  readonly mostSeconds: number;
}

/**
 * The byte rate an unread file is assumed to have: 32 kbit/s, the low end of speech as uploads carry it (a voice
 * memo's Opus or AAC, a phone call's MP3). Assuming a low rate over-counts the seconds of a richer file, so the
 * estimate reserves too much rather than too little and the provider's own window (which counts the real seconds)
 * is not met first; a `verbose_json` answer's `duration` puts the exact count in its place afterwards.
 */
export const ESTIMATED_BYTES_PER_SECOND = 4_000;

/**
 * The fewest bytes a second of audio takes in a container read here: 2 kbit/s, below any speech codec they carry
 * (Opus's lowest is 6 kbit/s, MP3's 8). A header claiming more seconds than its bytes could hold at this rate is not
 * believed: a 1 KB file saying 28 800 s would otherwise reserve a whole day's `asd` (refusing every upload after it
 * until the day resets) while the provider, decoding what came, counts a second. Only a recording of digital
 * silence compressed harder (FLAC, Opus DTX) is counted short by it, and a `verbose_json` duration corrects that.
 */
export const MIN_BYTES_PER_SECOND = 250;

// The most bytes a second of each codec plausibly takes: a header saying fewer seconds than the file's bytes hold at
// its codec's rate is not believed, since a header claiming 0 s would let a long file past the budgets, its decoder
// playing every frame that came. The tighter the rate, the less a lying header can take off; a real file above it is
// counted long (the budgets' safe side), never short. docs/limits.md "Audio seconds" lists them.

/**
 * Uncompressed audio at its most: 192 kHz, 32-bit, stereo PCM. For a PCM WAV (or PCM in Matroska or MP4) the header
 * is how a decoder plays the bytes, so a high rate there is what the provider hears too; it also bounds a container
 * whose codec is not known here, or that holds a video track (its bytes are mostly not audio).
 */
const MAX_PCM_BYTES_PER_SECOND = 1_536_000;

/**
 * Lossless audio (FLAC, ALAC) as a recording for transcription plausibly is: 48 kHz, 24-bit, stereo (2.3 Mbit/s of
 * PCM, which lossless coding does not exceed by more than its frame headers). A FLAC's own STREAMINFO format lowers it
 * further (losslessBytesPerSecond). A 96 kHz studio file is counted up to ~2x long.
 */
const MAX_LOSSLESS_BYTES_PER_SECOND = 288_000;

/** Lossless coding's frame headers over verbatim PCM: a few bytes per block of 192 to 4,096 samples; 10 % covers them. */
const LOSSLESS_FRAME_OVERHEAD = 1.1;

/** Ogg's and Matroska's lossy codecs at their highest bit rate: Opus 510 kbit/s (Vorbis tops out near 500). */
const MAX_OPUS_BYTES_PER_SECOND = 64_000;

/**
 * AAC (ADTS, MP4's `mp4a`, Matroska's A_AAC): AAC-LC's ceiling of 6,144 bits per channel per 1,024-sample frame, at
 * 48 kHz stereo (576 kbit/s). MP3 in MP4 (at most 320 kbit/s) is under it too.
 */
const MAX_AAC_BYTES_PER_SECOND = 72_000;

/** MPEG audio in Matroska (A_MPEG/L1, L2, L3): layer I's top rate, 448 kbit/s. A bare MP3 uses its own layer's. */
const MAX_MPEG_BYTES_PER_SECOND = 56_000;

/**
 * The most WAV chunks or MP4 boxes walked before the file is estimated instead: a real file has a handful (`fmt `,
 * `LIST`, `data`; `ftyp`, `moov`, `mdat`, `free`). Unbounded, a hostile 25 MB upload of 8-byte chunks took some
 * 3 million steps, a second of the event loop each time it was sent, every stream of the process waiting.
 */
const MAX_CHUNKS = 1_024;

/** How far from either end a header is looked for: more than any ID3 tag or Ogg page the reader skips. */
const SCAN_BYTES = 65_536;

/**
 * The seconds of audio in `bytes` (an uploaded file), never negative, never NaN, and within what its bytes can hold
 * (MIN_BYTES_PER_SECOND, and its format's highest rate): a header is the uploader's word, and a hostile one must
 * neither pass a long file as 0 s nor a short one as a day.
 */
export function audioDurationOf(bytes: Uint8Array): AudioDuration {
  const mostSeconds = bytes.byteLength / MIN_BYTES_PER_SECOND;
  const read = readHeaderDuration(bytes);
  if (read !== undefined && Number.isFinite(read.seconds) && read.seconds >= 0) {
    const seconds = Math.min(mostSeconds, Math.max(read.leastSeconds, read.seconds));
    return { seconds, source: "header", format: read.format, mostSeconds };
  }
  return { seconds: bytes.byteLength / ESTIMATED_BYTES_PER_SECOND, source: "estimate", format: "unknown", mostSeconds };
}

/** A header's seconds, and the fewest the file's bytes can hold at its format's highest rate. */
interface HeaderDuration {
  readonly seconds: number;
  readonly format: string;
  readonly leastSeconds: number;
}

/** A header's seconds and the fewest its bytes can hold, before the format is named. */
interface Read {
  readonly seconds: number;
  readonly leastSeconds: number;
}

function readHeaderDuration(bytes: Uint8Array): HeaderDuration | undefined {
  if (bytes.byteLength < 12) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = ascii(bytes, 0, 4);
  if (tag === "RIFF" && ascii(bytes, 8, 4) === "WAVE") {
    return named("wav", wavSeconds(bytes, view), bytes.byteLength / MAX_PCM_BYTES_PER_SECOND);
  }
  if (tag === "fLaC") return named("flac", flacSeconds(bytes, view));
  if (tag === "OggS") return named("ogg", oggSeconds(bytes, view));
  if (ascii(bytes, 4, 4) === "ftyp") return named("mp4", mp4Seconds(bytes, view));
  if (bytes[0] === 0x1a && bytes[1] === 0x45 && bytes[2] === 0xdf && bytes[3] === 0xa3) {
    const matroska = matroskaDuration(bytes, view);
    if (matroska === undefined) return undefined;
    const maxBytesPerSecond = matroska.hasVideo ? MAX_PCM_BYTES_PER_SECOND : matroskaCodecRate(matroska.codecId);
    const leastSeconds = bytes.byteLength / maxBytesPerSecond;
    return { seconds: matroska.seconds, format: matroska.format, leastSeconds };
  }
  // AAC in ADTS before MP3: both begin with a 12-bit frame sync, and the MP3 reader looks past what it cannot read.
  const audioStart = id3v2End(bytes);
  const adts = adtsSeconds(bytes, audioStart);
  if (adts !== undefined) return { ...adts, format: "aac" };
  const mp3 = mp3Seconds(bytes, view, audioStart);
  return mp3 === undefined ? undefined : { ...mp3, format: "mp3" };
}

function named(format: string, read: Read | number | undefined, leastSeconds = 0): HeaderDuration | undefined {
  if (read === undefined) return undefined;
  return typeof read === "number" ? { seconds: read, format, leastSeconds } : { ...read, format };
}

/** A Matroska audio track's CodecID's highest byte rate (MAX_PCM_BYTES_PER_SECOND for PCM or one not known here). */
function matroskaCodecRate(codecId: string | undefined): number {
  if (codecId === "A_OPUS" || codecId === "A_VORBIS") return MAX_OPUS_BYTES_PER_SECOND;
  if (codecId?.startsWith("A_AAC") === true) return MAX_AAC_BYTES_PER_SECOND;
  if (codecId?.startsWith("A_MPEG/") === true) return MAX_MPEG_BYTES_PER_SECOND;
  if (codecId === "A_FLAC" || codecId === "A_ALAC") return MAX_LOSSLESS_BYTES_PER_SECOND;
  return MAX_PCM_BYTES_PER_SECOND;
}

function ascii(bytes: Uint8Array, offset: number, length: number): string {
  if (offset < 0 || offset + length > bytes.byteLength) return "";
  return String.fromCharCode(...bytes.subarray(offset, offset + length));
}

/**
 * WAV: the `data` chunk's size over the `fmt ` chunk's byte rate. For PCM the rate is the sample rate times the block
 * size, as a decoder plays it, not the byte-rate field (nothing reads it: a hostile one said 4 GB/s, 0 s).
 */
function wavSeconds(bytes: Uint8Array, view: DataView): number | undefined {
  let byteRate: number | undefined;
  let offset = 12;
  for (let chunks = 0; offset + 8 <= bytes.byteLength && chunks < MAX_CHUNKS; chunks += 1) {
    const id = ascii(bytes, offset, 4);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === "fmt " && body + 12 <= bytes.byteLength) byteRate = view.getUint32(body + 8, true);
    if (id === "fmt " && body + 14 <= bytes.byteLength && PCM_FORMAT_TAGS.has(view.getUint16(body, true))) {
      const pcmRate = view.getUint32(body + 4, true) * view.getUint16(body + 12, true);
      if (pcmRate > 0) byteRate = pcmRate;
    }
    if (id === "data") {
      if (byteRate === undefined || byteRate === 0) return undefined;
      // A WAV written while recording says 0 or 0xFFFFFFFF, or more than came: the bytes that did come count.
      const available = bytes.byteLength - body;
      const dataBytes = size === 0 || size > available ? available : size;
      return dataBytes / byteRate;
    }
    // Chunks are padded to an even size.
    offset = body + size + (size % 2);
  }
  return undefined;
}

/** WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT, WAVE_FORMAT_EXTENSIBLE: a block per sample frame. */
const PCM_FORMAT_TAGS = new Set([0x0001, 0x0003, 0xfffe]);

/**
 * FLAC: STREAMINFO's total samples over its sample rate (0 samples: unknown, estimated), at least what the audio
 * frames' bytes (after the metadata blocks: a cover picture, the encoder's padding) hold at the stream's rate.
 */
function flacSeconds(bytes: Uint8Array, view: DataView): Read | undefined {
  // The first metadata block is STREAMINFO (type 0), 34 bytes.
  if (((bytes[4] ?? 0) & 0x7f) !== 0) return undefined;
  const info = flacStreamInfo(bytes, view, 8);
  if (info === undefined || info.totalSamples === 0) return undefined;
  const audioBytes = bytes.byteLength - flacAudioStart(bytes);
  return { seconds: info.totalSamples / info.sampleRate, leastSeconds: audioBytes / info.maxBytesPerSecond };
}

interface FlacStreamInfo {
  readonly sampleRate: number;
  readonly totalSamples: number;
  /** The most bytes a second of this stream takes (losslessBytesPerSecond). */
  readonly maxBytesPerSecond: number;
}

/** A STREAMINFO block's body at `at` (a FLAC file's byte 8, or inside an Ogg FLAC's first packet). */
function flacStreamInfo(bytes: Uint8Array, view: DataView, at: number): FlacStreamInfo | undefined {
  if (at + 18 > bytes.byteLength) return undefined;
  // 20 bits sample rate, 3 bits channels - 1, 5 bits bits-per-sample - 1, 36 bits total samples.
  const sampleRate = (view.getUint16(at + 10) << 4) | ((bytes[at + 12] ?? 0) >> 4);
  const channels = (((bytes[at + 12] ?? 0) >> 1) & 0x07) + 1;
  const bitsPerSample = ((((bytes[at + 12] ?? 0) & 0x01) << 4) | ((bytes[at + 13] ?? 0) >> 4)) + 1;
  const totalSamples = ((bytes[at + 13] ?? 0) & 0x0f) * 2 ** 32 + view.getUint32(at + 14);
  if (sampleRate === 0) return undefined;
  return { sampleRate, totalSamples, maxBytesPerSecond: losslessBytesPerSecond(sampleRate, channels, bitsPerSample) };
}

/**
 * The most bytes a second of a lossless stream takes: its PCM (rate, channels, bits as STREAMINFO says) with frame
 * headers, and never more than MAX_LOSSLESS_BYTES_PER_SECOND, since a header stating 655 kHz, 8 channels, 32 bits is
 * no more believed than one stating 0 s.
 */
function losslessBytesPerSecond(sampleRate: number, channels: number, bitsPerSample: number): number {
  const pcm = (sampleRate * channels * bitsPerSample) / 8;
  return Math.min(MAX_LOSSLESS_BYTES_PER_SECOND, pcm * LOSSLESS_FRAME_OVERHEAD);
}

/** Where a FLAC file's frames begin: after its last metadata block (at most MAX_CHUNKS of them). */
function flacAudioStart(bytes: Uint8Array): number {
  let offset = 4;
  for (let blocks = 0; offset + 4 <= bytes.byteLength && blocks < MAX_CHUNKS; blocks += 1) {
    const isLast = ((bytes[offset] ?? 0) & 0x80) !== 0;
    const length = ((bytes[offset + 1] ?? 0) << 16) | ((bytes[offset + 2] ?? 0) << 8) | (bytes[offset + 3] ?? 0);
    offset += 4 + length;
    if (isLast) break;
  }
  return Math.min(offset, bytes.byteLength);
}

/**
 * Ogg (Opus, Vorbis, FLAC): the last page's granule position over the stream's rate (Opus: 48 kHz, less its pre-skip;
 * FLAC: STREAMINFO's rate, its granule counting samples as Vorbis's does).
 */
function oggSeconds(bytes: Uint8Array, view: DataView): Read | undefined {
  // The first page's first packet names the codec; its header starts after the segment table.
  const segments = bytes[26] ?? 0;
  const packet = 27 + segments;
  let rate: number;
  let preSkip = 0;
  let maxBytesPerSecond = MAX_OPUS_BYTES_PER_SECOND;
  if (ascii(bytes, packet, 8) === "OpusHead") {
    rate = 48_000;
    if (packet + 12 > bytes.byteLength) return undefined;
    preSkip = view.getUint16(packet + 10, true);
  } else if (ascii(bytes, packet + 1, 6) === "vorbis" && bytes[packet] === 1) {
    if (packet + 16 > bytes.byteLength) return undefined;
    rate = view.getUint32(packet + 12, true);
  } else if (
    bytes[packet] === 0x7f &&
    ascii(bytes, packet + 1, 4) === "FLAC" &&
    ascii(bytes, packet + 9, 4) === "fLaC"
  ) {
    // 0x7F "FLAC", version (2 bytes), header packet count (2), "fLaC", then STREAMINFO's 4-byte block header and body.
    const info = flacStreamInfo(bytes, view, packet + 17);
    if (info === undefined) return undefined;
    rate = info.sampleRate;
    maxBytesPerSecond = info.maxBytesPerSecond;
  } else {
    return undefined;
  }
  if (rate === 0) return undefined;
  const leastSeconds = bytes.byteLength / maxBytesPerSecond;
  const from = Math.max(0, bytes.byteLength - SCAN_BYTES);
  for (let offset = bytes.byteLength - 27; offset >= from; offset -= 1) {
    if (bytes[offset] !== 0x4f || ascii(bytes, offset, 4) !== "OggS") continue;
    const granule = view.getUint32(offset + 6, true) + view.getUint32(offset + 10, true) * 2 ** 32;
    // -1 (all ones): a page on which no packet ends; an earlier page has the position.
    if (view.getUint32(offset + 6, true) === 0xffffffff && view.getUint32(offset + 10, true) === 0xffffffff) continue;
    return { seconds: Math.max(0, granule - preSkip) / rate, leastSeconds };
  }
  return undefined;
}

/**
 * MP4/M4A: the movie header's (`moov`/`mvhd`) duration over its timescale, at least what the file's bytes hold at
 * its sound tracks' codec's highest rate (mp4CodecRate).
 */
function mp4Seconds(bytes: Uint8Array, view: DataView): Read | undefined {
  const moov = findBox(bytes, view, 0, bytes.byteLength, "moov");
  if (moov === undefined) return undefined;
  const mvhd = findBox(bytes, view, moov.body, moov.end, "mvhd");
  if (mvhd === undefined || mvhd.body + 32 > bytes.byteLength) return undefined;
  const version = bytes[mvhd.body] ?? 0;
  const timescale = view.getUint32(mvhd.body + (version === 1 ? 20 : 12));
  const duration =
    version === 1
      ? view.getUint32(mvhd.body + 24) * 2 ** 32 + view.getUint32(mvhd.body + 28)
      : view.getUint32(mvhd.body + 16);
  if (timescale === 0) return undefined;
  return { seconds: duration / timescale, leastSeconds: bytes.byteLength / mp4MaxBytesPerSecond(bytes, view, moov) };
}

/** Sample entry types (`stsd`) whose highest rate is known, by codec. */
const MP4_CODEC_RATES: Readonly<Record<string, number>> = {
  mp4a: MAX_AAC_BYTES_PER_SECOND,
  Opus: MAX_OPUS_BYTES_PER_SECOND,
  fLaC: MAX_LOSSLESS_BYTES_PER_SECOND,
  alac: MAX_LOSSLESS_BYTES_PER_SECOND,
};

/**
 * The most bytes a second of the movie takes: its sound tracks' codecs' highest rate (`trak`/`mdia`/`minf`/`stbl`/
 * `stsd`'s first entry); the PCM rate when a track is video (a video's bytes are mostly not its audio), a sound
 * track's codec is not in MP4_CODEC_RATES (PCM, ALAC's kin), or none is found.
 */
function mp4MaxBytesPerSecond(bytes: Uint8Array, view: DataView, moov: Box): number {
  let most: number | undefined;
  for (const trak of boxes(bytes, view, moov.body, moov.end)) {
    if (trak.type !== "trak") continue;
    const mdia = findBox(bytes, view, trak.body, trak.end, "mdia");
    const hdlr = mdia && findBox(bytes, view, mdia.body, mdia.end, "hdlr");
    const handler = hdlr === undefined ? "" : ascii(bytes, hdlr.body + 8, 4);
    if (handler === "vide") return MAX_PCM_BYTES_PER_SECOND;
    if (handler !== "soun" || mdia === undefined) continue;
    const minf = findBox(bytes, view, mdia.body, mdia.end, "minf");
    const stbl = minf && findBox(bytes, view, minf.body, minf.end, "stbl");
    const stsd = stbl && findBox(bytes, view, stbl.body, stbl.end, "stsd");
    // stsd: version and flags (4), entry count (4), then the first entry's size (4) and type.
    const entry = stsd === undefined ? "" : ascii(bytes, stsd.body + 12, 4);
    most = Math.max(most ?? 0, MP4_CODEC_RATES[entry] ?? MAX_PCM_BYTES_PER_SECOND);
  }
  return most ?? MAX_PCM_BYTES_PER_SECOND;
}

interface Box {
  readonly type: string;
  readonly body: number;
  readonly end: number;
}

/** The boxes of [start, end), at most MAX_CHUNKS. */
function* boxes(bytes: Uint8Array, view: DataView, start: number, end: number): Generator<Box> {
  let offset = start;
  for (let count = 0; offset + 8 <= end && count < MAX_CHUNKS; count += 1) {
    let size = view.getUint32(offset);
    let header = 8;
    if (size === 1 && offset + 16 <= end) {
      size = view.getUint32(offset + 8) * 2 ** 32 + view.getUint32(offset + 12);
      header = 16;
    } else if (size === 0) {
      size = end - offset;
    }
    if (size < header) return;
    yield { type: ascii(bytes, offset + 4, 4), body: offset + header, end: Math.min(end, offset + size) };
    offset += size;
  }
}

function findBox(bytes: Uint8Array, view: DataView, start: number, end: number, type: string): Box | undefined {
  for (const box of boxes(bytes, view, start, end)) if (box.type === type) return box;
  return undefined;
}

/** The sample rates an ADTS header's 4-bit index names (13 to 15 are reserved). */
const ADTS_SAMPLE_RATES = [
  96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000, 7_350,
];

/**
 * The most ADTS frames walked: 93 minutes at 48 kHz, more than a 25 MB upload holds at any speech bit rate above
 * 12 kbit/s. Walked whole, a hostile 25 MB of the smallest frames (3 million) held the event loop for ~50 ms.
 */
const MAX_ADTS_FRAMES = 262_144;

/**
 * AAC in ADTS (`.aac`): every frame header gives its length, its sample rate and its raw data blocks (1,024 samples
 * each), so the frames are walked and their samples added: exact for variable bit rate too, plain byte reads over a
 * file already in memory. Past MAX_ADTS_FRAMES the rest of the file counts at the walked frames' bytes per second.
 * The walk stops at the first byte that is not a frame header (an ID3v1 tag, junk); what follows it counts only
 * towards the bound at AAC's highest rate. Undefined unless the first frame is followed by a second or the file's end.
 */
function adtsSeconds(bytes: Uint8Array, start: number): Read | undefined {
  let seconds = 0;
  let offset = start;
  let frames = 0;
  while (offset + 7 <= bytes.byteLength) {
    if (frames === MAX_ADTS_FRAMES) {
      seconds += ((bytes.byteLength - offset) * seconds) / (offset - start);
      break;
    }
    // 12 bits of sync, then the MPEG version bit, and layer 00 (an MP3's is not).
    if (bytes[offset] !== 0xff || ((bytes[offset + 1] ?? 0) & 0xf6) !== 0xf0) break;
    const sampleRate = ADTS_SAMPLE_RATES[((bytes[offset + 2] ?? 0) >> 2) & 0x0f];
    const frameBytes =
      (((bytes[offset + 3] ?? 0) & 0x03) << 11) | ((bytes[offset + 4] ?? 0) << 3) | ((bytes[offset + 5] ?? 0) >> 5);
    if (sampleRate === undefined || frameBytes < 7) break;
    seconds += (((bytes[offset + 6] ?? 0) & 0x03) + 1) * (1_024 / sampleRate);
    offset += frameBytes;
    frames += 1;
  }
  const isConfirmed = frames >= 2 || (frames === 1 && offset >= bytes.byteLength);
  if (!isConfirmed) return undefined;
  return { seconds, leastSeconds: (bytes.byteLength - start) / MAX_AAC_BYTES_PER_SECOND };
}

/** Where the audio begins after an ID3v2 tag (MP3 and ADTS files often start with one), else 0. */
function id3v2End(bytes: Uint8Array): number {
  if (ascii(bytes, 0, 3) !== "ID3" || bytes.byteLength < 10) return 0;
  const size =
    (((bytes[6] ?? 0) & 0x7f) << 21) |
    (((bytes[7] ?? 0) & 0x7f) << 14) |
    (((bytes[8] ?? 0) & 0x7f) << 7) |
    ((bytes[9] ?? 0) & 0x7f);
  return 10 + size + (((bytes[5] ?? 0) & 0x10) !== 0 ? 10 : 0);
}

const MP3_BITRATES_KBPS: Record<string, readonly number[]> = {
  // [version 1 | 2][layer 1..3], index 1..14
  "1-1": [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
  "1-2": [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
  "1-3": [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  "2-1": [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
  "2-2": [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
  "2-3": [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
};
const MP3_SAMPLE_RATES: Record<number, readonly number[]> = {
  3: [44_100, 48_000, 32_000], // MPEG 1
  2: [22_050, 24_000, 16_000], // MPEG 2
  0: [11_025, 12_000, 8_000], // MPEG 2.5
};

/**
 * MP3 (MPEG audio): after any ID3v2 tag, the first frame header. A Xing/Info or VBRI header in that frame gives the
 * frame count (exact, VBR too); without one the file is taken as constant bit rate: its audio bytes over the
 * first frame's bit rate.
 */
function mp3Seconds(bytes: Uint8Array, view: DataView, start: number): Read | undefined {
  // The first frame sync within the scan (padding or junk may come before it); 4 header bytes and a second look.
  const limit = Math.min(bytes.byteLength - 4, start + SCAN_BYTES);
  for (let offset = start; offset < limit; offset += 1) {
    if (bytes[offset] !== 0xff || ((bytes[offset + 1] ?? 0) & 0xe0) !== 0xe0) continue;
    const frame = mp3Frame(view, offset);
    if (frame === undefined) continue;
    // Every frame that came is played whatever the Xing header counts: not fewer seconds than at the highest rate.
    const leastSeconds = (bytes.byteLength - offset) / (frame.maxBitrateKbps * 125);
    const frames = xingFrames(bytes, view, offset, frame) ?? vbriFrames(bytes, view, offset);
    if (frames !== undefined) return { seconds: (frames * frame.samplesPerFrame) / frame.sampleRate, leastSeconds };
    // Constant bit rate: confirmed by a second frame header where this one says the next begins.
    const next = offset + frame.frameBytes;
    if (next + 4 <= bytes.byteLength && mp3Frame(view, next) === undefined) continue;
    const trailer = ascii(bytes, bytes.byteLength - 128, 3) === "TAG" ? 128 : 0;
    return { seconds: ((bytes.byteLength - offset - trailer) * 8) / (frame.bitrateKbps * 1000), leastSeconds };
  }
  return undefined;
}

interface Mp3Frame {
  readonly versionBits: number;
  readonly isMono: boolean;
  readonly bitrateKbps: number;
  /** The highest bit rate of the frame's version and layer. */
  readonly maxBitrateKbps: number;
  readonly sampleRate: number;
  readonly samplesPerFrame: number;
  readonly frameBytes: number;
}

function mp3Frame(view: DataView, offset: number): Mp3Frame | undefined {
  if (offset + 4 > view.byteLength) return undefined;
  const header = view.getUint32(offset);
  if (header >>> 21 !== 0x7ff) return undefined;
  const versionBits = (header >>> 19) & 0b11; // 3: MPEG 1, 2: MPEG 2, 0: MPEG 2.5, 1: reserved
  const layerBits = (header >>> 17) & 0b11; // 3: layer I, 2: II, 1: III, 0: reserved
  const bitrateIndex = (header >>> 12) & 0b1111;
  const rateIndex = (header >>> 10) & 0b11;
  if (versionBits === 1 || layerBits === 0 || bitrateIndex === 0 || bitrateIndex === 15 || rateIndex === 3) {
    return undefined;
  }
  const layer = 4 - layerBits;
  const bitrates = MP3_BITRATES_KBPS[`${versionBits === 3 ? 1 : 2}-${layer}`];
  const bitrateKbps = bitrates?.[bitrateIndex];
  const sampleRate = MP3_SAMPLE_RATES[versionBits]?.[rateIndex];
  if (bitrates === undefined || bitrateKbps === undefined || sampleRate === undefined) return undefined;
  const samplesPerFrame = layer === 1 ? 384 : layer === 2 || versionBits === 3 ? 1152 : 576;
  const padding = (header >>> 9) & 1;
  const frameBytes =
    layer === 1
      ? (Math.floor((12 * bitrateKbps * 1000) / sampleRate) + padding) * 4
      : Math.floor(((samplesPerFrame / 8) * bitrateKbps * 1000) / sampleRate) + padding;
  const isMono = ((header >>> 6) & 0b11) === 3;
  const maxBitrateKbps = bitrates[bitrates.length - 1] ?? bitrateKbps;
  return { versionBits, isMono, bitrateKbps, maxBitrateKbps, sampleRate, samplesPerFrame, frameBytes };
}

/** A Xing (VBR) or Info (CBR) header's frame count, after the first frame's side information. */
function xingFrames(bytes: Uint8Array, view: DataView, offset: number, frame: Mp3Frame): number | undefined {
  const sideInfo = frame.versionBits === 3 ? (frame.isMono ? 17 : 32) : frame.isMono ? 9 : 17;
  const at = offset + 4 + sideInfo;
  const id = ascii(bytes, at, 4);
  if ((id !== "Xing" && id !== "Info") || at + 12 > bytes.byteLength) return undefined;
  const flags = view.getUint32(at + 4);
  return (flags & 1) === 1 ? view.getUint32(at + 8) : undefined;
}

/** A VBRI (Fraunhofer) header's frame count: 32 bytes after the first frame's header. */
function vbriFrames(bytes: Uint8Array, view: DataView, offset: number): number | undefined {
  const at = offset + 4 + 32;
  if (ascii(bytes, at, 4) !== "VBRI" || at + 18 > bytes.byteLength) return undefined;
  return view.getUint32(at + 14);
}

/**
 * The seconds an upload is counted as on a provider's `ash`/`asd` budgets: its duration, at least the provider's
 * `min_billed_audio_seconds` (Groq counts a shorter file as 10 s), in whole seconds, rounded up as the providers bill.
 */
export function billedAudioSeconds(seconds: number, minimumSeconds: number): number {
  return Math.ceil(Math.max(seconds, minimumSeconds));
}

/**
 * The seconds of audio a transcription's JSON answer says it heard: `verbose_json`'s `duration` (OpenAI, Groq), or
 * the `usage` of type `duration` newer OpenAI models report, at most `mostSeconds` (the upload's AudioDuration.mostSeconds:
 * 10^9 s reconciled onto a budget would refuse every upload for as long as the window keeps it). Undefined when it
 * says none (`json` has no duration).
 */
export function reportedAudioSeconds(json: unknown, mostSeconds = Number.POSITIVE_INFINITY): number | undefined {
  if (!isRecord(json)) return undefined;
  const seconds = (value: unknown): number | undefined =>
    typeof value === "number" && Number.isFinite(value) && value >= 0 ? Math.min(value, mostSeconds) : undefined;
  const usage = json.usage;
  if (isRecord(usage) && usage.type === "duration") return seconds(usage.seconds) ?? seconds(json.duration);
  return seconds(json.duration);
}
