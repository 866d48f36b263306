// An MP4/M4A upload's seconds of audio (audio-duration.ts): the movie header's duration, bounded below by its sound
// tracks' codec. At most MAX_CHUNKS boxes walked per level. Pure: no I/O, no clock.
import {
  ascii,
  type HeaderRead,
  MAX_AAC_BYTES_PER_SECOND,
  MAX_CHUNKS,
  MAX_LOSSLESS_BYTES_PER_SECOND,
  MAX_OPUS_BYTES_PER_SECOND,
  MAX_PCM_BYTES_PER_SECOND,
} from "./audio-header-reading.ts";

/**
 * MP4/M4A: the movie header's (`moov`/`mvhd`) duration over its timescale, at least what the file's bytes hold at
 * its sound tracks' codec's highest rate (mp4CodecRate).
 */
export function mp4Seconds(bytes: Uint8Array, view: DataView): HeaderRead | undefined {
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
  const mvex = findBox(bytes, view, moov.body, moov.end, "mvex");
  const movieDuration = mvex === undefined ? duration : fragmentedDuration(bytes, view, mvex, duration);
  if (movieDuration === undefined) return undefined;
  return {
    seconds: movieDuration / timescale,
    leastSeconds: bytes.byteLength / mp4MaxBytesPerSecond(bytes, view, moov),
  };
}

/**
 * A fragmented MP4 (`mvex` in its `moov`: a browser's MediaRecorder `audio/mp4`, written live) keeps its samples in
 * `moof` fragments after the `moov`, and mvhd's duration counts only the `moov`'s own samples: 0 for a recorder, which
 * does not know the length when it writes that box. Read as 0 s, 60 s of 128 kbit/s AAC counted 13 s (its bytes at
 * AAC's top rate). Its length is the Movie Extends Header's (`mehd`, in mvhd's timescale) when there is one; without
 * it the file is estimated from its size as an unread one (undefined), never short at a speech bit rate.
 */
function fragmentedDuration(bytes: Uint8Array, view: DataView, mvex: Box, duration: number): number | undefined {
  const mehd = findBox(bytes, view, mvex.body, mvex.end, "mehd");
  if (mehd === undefined) return undefined;
  const isVersion1 = bytes[mehd.body] === 1;
  if (mehd.body + (isVersion1 ? 12 : 8) > mehd.end) return undefined;
  const fragmentDuration = isVersion1
    ? view.getUint32(mehd.body + 4) * 2 ** 32 + view.getUint32(mehd.body + 8)
    : view.getUint32(mehd.body + 4);
  return fragmentDuration === 0 ? undefined : Math.max(duration, fragmentDuration);
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
