// How many seconds of audio an upload holds, for the audio-second budgets (`ash`, `asd`; docs/limits.md "Audio
// seconds"): read from the container's header where that is cheap and exact, else estimated from the byte size.
//
// Why not a library: `music-metadata` reads every format but is an ESM package of ~20 modules with its own
// dependencies (strtok3, token-types, file-type, ...), loaded and kept in memory by a process that mostly serves
// chat. The few header fields a duration needs are read here in one pass over at most the first and last 64 KB of
// the file (or its first MAX_CHUNKS WAV chunks or MP4 boxes), without copying it. A format not read here (WebM/Matroska, AAC in ADTS, AMR, ...) is estimated.
//
// Pure: no I/O, no clock.
import { isRecord } from "../is-record.ts";

/** An upload's duration and where it came from: the container's header (`header`) or the byte size (`estimate`). */
export interface AudioDuration {
  readonly seconds: number;
  readonly source: "header" | "estimate";
  /** The container that was read (`wav`, `flac`, `mp3`, `ogg`, `mp4`), or `unknown` for an estimate. */
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

/**
 * The most bytes a second of uncompressed audio takes here: 192 kHz, 32-bit, stereo PCM. A WAV or FLAC header (or an
 * MP4 movie header, ALAC and PCM included) saying fewer seconds than its bytes hold at this rate is not believed: a
 * header claiming 0 s (or a WAV whose byte rate says 4 GB/s) would let a long file past the budgets, its decoder
 * playing every frame that came.
 */
const MAX_PCM_BYTES_PER_SECOND = 1_536_000;

/** Ogg's codecs at their highest bit rate: Opus 510 kbit/s (Vorbis tops out near 500). */
const MAX_OGG_BYTES_PER_SECOND = 64_000;

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

function readHeaderDuration(bytes: Uint8Array): HeaderDuration | undefined {
  if (bytes.byteLength < 12) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = ascii(bytes, 0, 4);
  const pcmLeast = bytes.byteLength / MAX_PCM_BYTES_PER_SECOND;
  if (tag === "RIFF" && ascii(bytes, 8, 4) === "WAVE") return named("wav", wavSeconds(bytes, view), pcmLeast);
  if (tag === "fLaC") return named("flac", flacSeconds(bytes, view), pcmLeast);
  if (tag === "OggS") return named("ogg", oggSeconds(bytes, view), bytes.byteLength / MAX_OGG_BYTES_PER_SECOND);
  if (ascii(bytes, 4, 4) === "ftyp") return named("mp4", mp4Seconds(bytes, view), pcmLeast);
  const mp3 = mp3Seconds(bytes, view);
  return mp3 === undefined ? undefined : { ...mp3, format: "mp3" };
}

function named(format: string, seconds: number | undefined, leastSeconds: number): HeaderDuration | undefined {
  return seconds === undefined ? undefined : { seconds, format, leastSeconds };
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

/** FLAC: STREAMINFO's total samples over its sample rate (0 samples: unknown, estimated). */
function flacSeconds(bytes: Uint8Array, view: DataView): number | undefined {
  // The first metadata block is STREAMINFO (type 0), 34 bytes; the rate and count start 10 bytes into it.
  if (bytes.byteLength < 8 + 18 || ((bytes[4] ?? 0) & 0x7f) !== 0) return undefined;
  const at = 8 + 10;
  const sampleRate = (view.getUint16(at) << 4) | ((bytes[at + 2] ?? 0) >> 4);
  const samplesHigh = (bytes[at + 3] ?? 0) & 0x0f;
  const totalSamples = samplesHigh * 2 ** 32 + view.getUint32(at + 4);
  if (sampleRate === 0 || totalSamples === 0) return undefined;
  return totalSamples / sampleRate;
}

/** Ogg (Opus, Vorbis): the last page's granule position over the stream's rate (Opus: 48 kHz, less its pre-skip). */
function oggSeconds(bytes: Uint8Array, view: DataView): number | undefined {
  // The first page's first packet names the codec; its header starts after the segment table.
  const segments = bytes[26] ?? 0;
  const packet = 27 + segments;
  let rate: number;
  let preSkip = 0;
  if (ascii(bytes, packet, 8) === "OpusHead") {
    rate = 48_000;
    if (packet + 12 > bytes.byteLength) return undefined;
    preSkip = view.getUint16(packet + 10, true);
  } else if (ascii(bytes, packet + 1, 6) === "vorbis" && bytes[packet] === 1) {
    if (packet + 16 > bytes.byteLength) return undefined;
    rate = view.getUint32(packet + 12, true);
  } else {
    return undefined;
  }
  if (rate === 0) return undefined;
  const from = Math.max(0, bytes.byteLength - SCAN_BYTES);
  for (let offset = bytes.byteLength - 27; offset >= from; offset -= 1) {
    if (bytes[offset] !== 0x4f || ascii(bytes, offset, 4) !== "OggS") continue;
    const granule = view.getUint32(offset + 6, true) + view.getUint32(offset + 10, true) * 2 ** 32;
    // -1 (all ones): a page on which no packet ends; an earlier page has the position.
    if (view.getUint32(offset + 6, true) === 0xffffffff && view.getUint32(offset + 10, true) === 0xffffffff) continue;
    return Math.max(0, granule - preSkip) / rate;
  }
  return undefined;
}

/** MP4/M4A: the movie header's (`moov`/`mvhd`) duration over its timescale. */
function mp4Seconds(bytes: Uint8Array, view: DataView): number | undefined {
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
  return duration / timescale;
}

function findBox(
  bytes: Uint8Array,
  view: DataView,
  start: number,
  end: number,
  type: string,
): { body: number; end: number } | undefined {
  let offset = start;
  for (let boxes = 0; offset + 8 <= end && boxes < MAX_CHUNKS; boxes += 1) {
    let size = view.getUint32(offset);
    let header = 8;
    if (size === 1 && offset + 16 <= end) {
      size = view.getUint32(offset + 8) * 2 ** 32 + view.getUint32(offset + 12);
      header = 16;
    } else if (size === 0) {
      size = end - offset;
    }
    if (size < header) return undefined;
    if (ascii(bytes, offset + 4, 4) === type) return { body: offset + header, end: Math.min(end, offset + size) };
    offset += size;
  }
  return undefined;
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
function mp3Seconds(bytes: Uint8Array, view: DataView): { seconds: number; leastSeconds: number } | undefined {
  let start = 0;
  if (ascii(bytes, 0, 3) === "ID3" && bytes.byteLength >= 10) {
    const size =
      (((bytes[6] ?? 0) & 0x7f) << 21) |
      (((bytes[7] ?? 0) & 0x7f) << 14) |
      (((bytes[8] ?? 0) & 0x7f) << 7) |
      ((bytes[9] ?? 0) & 0x7f);
    start = 10 + size + (((bytes[5] ?? 0) & 0x10) !== 0 ? 10 : 0);
  }
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
