// An MPEG audio upload's seconds (audio-duration.ts): MP3 (Xing/Info, VBRI, or constant bit rate) and AAC in ADTS
// (its frames walked), after any ID3v2 tag. Pure: no I/O, no clock.
import { ascii, type HeaderRead, MAX_AAC_BYTES_PER_SECOND, SCAN_BYTES } from "./audio-header-reading.ts";

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
export function adtsSeconds(bytes: Uint8Array, start: number): HeaderRead | undefined {
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
export function id3v2End(bytes: Uint8Array): number {
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
export function mp3Seconds(bytes: Uint8Array, view: DataView, start: number): HeaderRead | undefined {
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
