// How many seconds of audio an upload holds, for the audio-second budgets (`ash`, `asd`; docs/limits.md "Audio
// seconds"): read from the container's header where that is cheap and exact, else estimated from the byte size.
//
// Why not a library: `music-metadata` reads every format but is an ESM package of ~20 modules with its own
// dependencies (strtok3, token-types, file-type, ...), loaded and kept in memory by a process that mostly serves
// chat. The few header fields a duration needs are read here in one pass over at most the first and last 64 KB of
// the file (or its first MAX_CHUNKS WAV chunks or MP4 boxes; a WebM's last MB, matroska-duration.ts; an MP3 or ADTS
// file's frame headers, mpeg-audio-duration.ts), without copying it. A format not read here (AMR, ...) is estimated.
//
// Pure: no I/O, no clock.
import { isRecord } from "../is-record.ts";
import {
  ascii,
  ESTIMATED_BYTES_PER_SECOND,
  type HeaderRead,
  losslessBytesPerSecond,
  MAX_AAC_BYTES_PER_SECOND,
  MAX_CHUNKS,
  MAX_LOSSLESS_BYTES_PER_SECOND,
  MAX_MPEG_BYTES_PER_SECOND,
  MAX_OPUS_BYTES_PER_SECOND,
  MAX_PCM_BYTES_PER_SECOND,
  SCAN_BYTES,
} from "./audio-header-reading.ts";
import { matroskaDuration } from "./matroska-duration.ts";
import { mp4Seconds } from "./mp4-duration.ts";
import { adtsSeconds, id3v2End, mp3Seconds } from "./mpeg-audio-duration.ts";

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

// ESTIMATED_BYTES_PER_SECOND lives with the readers (the frame walks count their unread rest at it too).
export { ESTIMATED_BYTES_PER_SECOND } from "./audio-header-reading.ts";

/**
 * The fewest bytes a second of audio takes in a container read here: 2 kbit/s, below any speech codec they carry
 * (Opus's lowest is 6 kbit/s, MP3's 8). A header claiming more seconds than its bytes could hold at this rate is not
 * believed: a 1 KB file saying 28 800 s would otherwise reserve a whole day's `asd` (refusing every upload after it
 * until the day resets) while the provider, decoding what came, counts a second. Only a recording of digital
 * silence compressed harder (FLAC, Opus DTX) is counted short by it, and a `verbose_json` duration corrects that.
 */
export const MIN_BYTES_PER_SECOND = 250;

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

function named(format: string, read: HeaderRead | number | undefined, leastSeconds = 0): HeaderDuration | undefined {
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

/**
 * WAV: the `data` chunk's size over the `fmt ` chunk's byte rate. For PCM (and G.711) the rate is the sample rate times
 * the block size, as a decoder plays it, not the byte-rate field (nothing reads it: a hostile one said 4 GB/s, 0 s).
 * For a compressed codec (ADPCM, GSM, MP3 in WAV) the field is believed only up to 16-bit PCM of the stated rate and
 * channels, which no such codec exceeds: its decoder too plays its blocks by their own layout, not by that field.
 */
function wavSeconds(bytes: Uint8Array, view: DataView): number | undefined {
  let byteRate: number | undefined;
  let offset = 12;
  for (let chunks = 0; offset + 8 <= bytes.byteLength && chunks < MAX_CHUNKS; chunks += 1) {
    const id = ascii(bytes, offset, 4);
    const size = view.getUint32(offset + 4, true);
    const body = offset + 8;
    if (id === "fmt " && body + 12 <= bytes.byteLength) {
      const compressedMost = view.getUint32(body + 4, true) * view.getUint16(body + 2, true) * 2;
      byteRate = Math.min(view.getUint32(body + 8, true), compressedMost);
    }
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

/**
 * WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT, WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW (G.711: a phone call's byte per sample),
 * WAVE_FORMAT_EXTENSIBLE: a block per sample frame.
 */
const PCM_FORMAT_TAGS = new Set([0x0001, 0x0003, 0x0006, 0x0007, 0xfffe]);

/**
 * FLAC: STREAMINFO's total samples over its sample rate (0 samples: unknown, estimated), at least what the audio
 * frames' bytes (after the metadata blocks: a cover picture, the encoder's padding) hold at the stream's rate.
 */
function flacSeconds(bytes: Uint8Array, view: DataView): HeaderRead | undefined {
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
function oggSeconds(bytes: Uint8Array, view: DataView): HeaderRead | undefined {
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
    // Another stream's page (a second serial): files joined into a chained Ogg, each chain's granule starting at 0
    // again, so the last page counts only the last chain (60 s and 5 s joined counted 5 s); or a multiplexed one.
    // Estimated from its size instead.
    if (view.getUint32(offset + 14, true) !== view.getUint32(14, true)) return undefined;
    return { seconds: Math.max(0, granule - preSkip) / rate, leastSeconds };
  }
  return undefined;
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
