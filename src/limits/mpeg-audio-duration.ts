// An MPEG audio upload's seconds (audio-duration.ts): MP3 and AAC in ADTS, their frames walked after any ID3v2 tag
// as a decoder plays them (walkFrames; an MP3's Xing/Info or VBRI count too). Pure: no I/O, no clock.
import {
  ascii,
  ESTIMATED_BYTES_PER_SECOND,
  type HeaderRead,
  MAX_AAC_BYTES_PER_SECOND,
  SCAN_BYTES,
} from "./audio-header-reading.ts";

/** The sample rates an ADTS header's 4-bit index names (13 to 15 are reserved). */
const ADTS_SAMPLE_RATES = [
  96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000, 7_350,
];

/**
 * The most frames walked (MP3 or ADTS): 93 minutes of AAC at 48 kHz, more than a 25 MB upload holds at any speech bit
 * rate above 12 kbit/s. Walked whole, a hostile 25 MB of the smallest ADTS frames (3 million) held the event loop for
 * ~50 ms. The rest of the file counts at the walked frames' bytes per second (unreadRestSeconds).
 */
const MAX_FRAMES = 262_144;

/**
 * The most bytes skipped between frames that might hold one, in all. A decoder resyncs past bytes that are not a
 * frame (an ID3v2 tag where two files were joined, a damaged frame) and plays every frame behind them, so the walk does
 * too: stopped at the first such byte, one junk byte after two frames passed 100 s of AAC as 3 s (its rest counted at
 * AAC's top rate). A run without a 0xFF byte holds no frame (every frame starts with one) and is skipped free at any
 * length (an encoder's zero padding); from a run's first 0xFF on, skipped bytes spend this budget, and past it the
 * rest counts as unread (unreadRestSeconds), so that a long run of what this reader does not take for frames (a decoder
 * might) is not free.
 */
const MAX_SKIPPED_BYTES = SCAN_BYTES;

/** One frame of an elementary stream (MP3, ADTS): its length in bytes and the seconds it plays. */
interface Frame {
  readonly bytes: number;
  readonly seconds: number;
}

/**
 * The seconds of the frames from `start` (a frame), each frame's own header saying its samples and rate, as a decoder
 * plays them: exact for variable bit rate, whatever the first frame's rate or a Xing header says. Bounded: at most
 * MAX_FRAMES frames and MAX_SKIPPED_BYTES of resync; what is left then counts by unreadRestSeconds.
 */
function walkFrames(bytes: Uint8Array, start: number, frameAt: (offset: number) => Frame | undefined): number {
  let seconds = 0;
  let frameBytes = 0;
  let frames = 0;
  let budget = MAX_SKIPPED_BYTES;
  let offset = start;
  while (offset < bytes.byteLength && frames < MAX_FRAMES) {
    const frame = frameAt(offset);
    if (frame !== undefined) {
      seconds += frame.seconds;
      frameBytes += frame.bytes;
      frames += 1;
      offset += frame.bytes;
      continue;
    }
    const skip = skipToFrame(bytes, offset, budget, frameAt);
    budget -= skip.spentBytes;
    offset = skip.offset;
    if (!skip.isFrame) break;
  }
  return seconds + unreadRestSeconds(Math.max(0, bytes.byteLength - offset), frameBytes, seconds);
}

/**
 * From `from` (not a frame) to the next frame a decoder would resync to: a frame header followed by another, or by the
 * file's end (`isFrame`). Otherwise where the walk stops: the file's end (the bytes skipped play nothing), or where
 * `budget` ran out (the rest is counted). Bytes before a run's first 0xFF are free; from it on, each spends `budget`.
 */
function skipToFrame(
  bytes: Uint8Array,
  from: number,
  budget: number,
  frameAt: (offset: number) => Frame | undefined,
): { offset: number; spentBytes: number; isFrame: boolean } {
  let firstSync: number | undefined;
  for (let offset = from; offset < bytes.byteLength; offset += 1) {
    if (bytes[offset] !== 0xff) continue;
    firstSync ??= offset;
    if (offset - firstSync >= budget) break;
    const frame = offset === from ? undefined : frameAt(offset);
    if (frame === undefined) continue;
    const after = offset + frame.bytes;
    if (after >= bytes.byteLength || frameAt(after) !== undefined) {
      return { offset, spentBytes: offset - firstSync, isFrame: true };
    }
  }
  if (firstSync === undefined || bytes.byteLength - firstSync <= budget) {
    return { offset: bytes.byteLength, spentBytes: 0, isFrame: false };
  }
  return { offset: firstSync + budget, spentBytes: budget, isFrame: false };
}

/**
 * The seconds of `restBytes` not walked (past MAX_FRAMES, or junk past MAX_SKIPPED_BYTES): at the walked frames' byte
 * rate, or an unread file's (ESTIMATED_BYTES_PER_SECOND) when that is lower, so that a walk of rich frames does not
 * make a poorer rest count short.
 */
function unreadRestSeconds(restBytes: number, walkedBytes: number, walkedSeconds: number): number {
  if (restBytes === 0) return 0;
  const walkedRate = walkedSeconds > 0 ? walkedBytes / walkedSeconds : ESTIMATED_BYTES_PER_SECOND;
  return restBytes / Math.min(walkedRate, ESTIMATED_BYTES_PER_SECOND);
}

/**
 * AAC in ADTS (`.aac`): every frame header gives its length, its sample rate and its raw data blocks (1,024 samples
 * each), so the frames are walked and their samples added (walkFrames), plain byte reads over a file already in memory.
 * Undefined unless the first frame is followed by a second or the file's end.
 */
export function adtsSeconds(bytes: Uint8Array, start: number): HeaderRead | undefined {
  const first = adtsFrame(bytes, start);
  if (first === undefined) return undefined;
  const second = start + first.bytes;
  if (second < bytes.byteLength && adtsFrame(bytes, second) === undefined) return undefined;
  return {
    seconds: walkFrames(bytes, start, (offset) => adtsFrame(bytes, offset)),
    leastSeconds: (bytes.byteLength - start) / MAX_AAC_BYTES_PER_SECOND,
  };
}

function adtsFrame(bytes: Uint8Array, offset: number): Frame | undefined {
  if (offset + 7 > bytes.byteLength) return undefined;
  // 12 bits of sync, then the MPEG version bit, and layer 00 (an MP3's is not).
  if (bytes[offset] !== 0xff || ((bytes[offset + 1] ?? 0) & 0xf6) !== 0xf0) return undefined;
  const sampleRate = ADTS_SAMPLE_RATES[((bytes[offset + 2] ?? 0) >> 2) & 0x0f];
  const frameBytes =
    (((bytes[offset + 3] ?? 0) & 0x03) << 11) | ((bytes[offset + 4] ?? 0) << 3) | ((bytes[offset + 5] ?? 0) >> 5);
  if (sampleRate === undefined || frameBytes < 7) return undefined;
  return { bytes: frameBytes, seconds: (((bytes[offset + 6] ?? 0) & 0x03) + 1) * (1_024 / sampleRate) };
}

/** Where the audio begins after an ID3v2 tag (MP3 and ADTS files often start with one), else 0. */
export function id3v2End(bytes: Uint8Array): number {
  if (ascii(bytes, 0, 3) !== "ID3" || bytes.byteLength < 10) return 0;
  const size =
    (((bytes[6] ?? 0) & 0x7f) << 21) |
    (((bytes[7] ?? 0) & 0x7f) << 14) |
    (((bytes[8] ?? 0) & 0x7f) << 7) |
    ((bytes[9] ?? 0) & 0x7f);
  return 10 + size + (((bytes[5] ?? 0) & 0x10) !== 0 ? 10 : 0);
}

/** Kbit/s by bit-rate index 1..14: MPEG 1 layers I, II, III, then MPEG 2 and 2.5 layers I, II, III (by number). */
const MP3_BITRATES_KBPS: readonly (readonly number[])[] = [
  [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
  [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
  [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
  [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
  [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];
const MP3_SAMPLE_RATES: Record<number, readonly number[]> = {
  3: [44_100, 48_000, 32_000], // MPEG 1
  2: [22_050, 24_000, 16_000], // MPEG 2
  0: [11_025, 12_000, 8_000], // MPEG 2.5
};

/**
 * MP3 (MPEG audio): after any ID3v2 tag, the first frame header, then every frame walked (walkFrames): exact for
 * variable bit rate. Read as constant bit rate from the first frame, two 320 kbit/s frames before 32 kbit/s ones
 * passed 100 s as 10 s. A Xing/Info or VBRI header in the first frame counts the frames too; the count is the larger.
 */
export function mp3Seconds(bytes: Uint8Array, view: DataView, start: number): HeaderRead | undefined {
  // The first frame sync within the scan (padding or junk may come before it); 4 header bytes and a second look.
  const limit = Math.min(bytes.byteLength - 4, start + SCAN_BYTES);
  const frameAt = (offset: number): Frame | undefined => {
    const frame = mp3Frame(view, offset);
    return frame && { bytes: frame.frameBytes, seconds: frame.samplesPerFrame / frame.sampleRate };
  };
  for (let offset = start; offset < limit; offset += 1) {
    if (bytes[offset] !== 0xff || ((bytes[offset + 1] ?? 0) & 0xe0) !== 0xe0) continue;
    const frame = mp3Frame(view, offset);
    if (frame === undefined) continue;
    // Every frame that came is played whatever the Xing header counts: not fewer seconds than at the highest rate.
    const leastSeconds = (bytes.byteLength - offset) / (frame.maxBitrateKbps * 125);
    const frames = xingFrames(bytes, view, offset, frame) ?? vbriFrames(bytes, view, offset);
    if (frames !== undefined) {
      // The header's own frame is silent: the walk starts after it.
      const walked = walkFrames(bytes, offset + frame.frameBytes, frameAt);
      return { seconds: Math.max((frames * frame.samplesPerFrame) / frame.sampleRate, walked), leastSeconds };
    }
    // No header: a frame only when a second frame header is where this one says the next begins.
    const next = offset + frame.frameBytes;
    if (next + 4 <= bytes.byteLength && mp3Frame(view, next) === undefined) continue;
    return { seconds: walkFrames(bytes, offset, frameAt), leastSeconds };
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
  // A number, not a string key: this runs once per frame of the walk (a 25 MB file: some 200,000).
  const bitrates = MP3_BITRATES_KBPS[(versionBits === 3 ? 0 : 3) + layer - 1];
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
