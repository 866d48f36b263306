// A WebM/Matroska upload's seconds of audio (audio-duration.ts), from the Segment's Info (TimecodeScale, Duration)
// and the last Cluster's timestamps: a browser's MediaRecorder (`audio/webm;codecs=opus`) writes the file live and
// leaves Duration out, so the last block's time is what says how long it is.
//
// Bounded: the head is walked only in its first 64 KB and the tail searched only in its last MATROSKA_TAIL_BYTES,
// each element or block one step of plain byte reads. Pure: no I/O, no clock.

/** How far from the end the last Cluster is looked for: more than a cluster of MediaRecorder's (a few seconds). */
export const MATROSKA_TAIL_BYTES = 1_048_576;

/** Where the Segment's Info and Tracks are looked for: a writer puts them before the first Cluster, in a few KB. */
const HEAD_BYTES = 65_536;

/** Elements walked in one master element of the head, or cluster candidates tried in the tail. */
const MAX_ELEMENTS = 1_024;
/**
 * Elements walked in the tail's clusters, all candidates together: 1 MB of the smallest blocks (a few bytes each) is
 * some 200,000, a few milliseconds of plain byte reads.
 */
const MAX_TAIL_STEPS = 262_144;

const EBML = 0x1a45dfa3;
const DOC_TYPE = 0x4282;
const SEGMENT = 0x18538067;
const INFO = 0x1549a966;
const TIMECODE_SCALE = 0x2ad7b1;
const DURATION = 0x4489;
const TRACKS = 0x1654ae6b;
const TRACK_ENTRY = 0xae;
const TRACK_TYPE = 0x83;
const CODEC_ID = 0x86;
const DEFAULT_DURATION = 0x23e383;
const CLUSTER = 0x1f43b675;
const CLUSTER_TIMECODE = 0xe7;
const SIMPLE_BLOCK = 0xa3;
const BLOCK_GROUP = 0xa0;
const BLOCK = 0xa1;
const BLOCK_DURATION = 0x9b;

/** Matroska's default TimecodeScale: timestamps in milliseconds. */
const DEFAULT_TIMECODE_SCALE_NS = 1_000_000;

/** TrackType `video` (1): a file with one is a video whose bytes are mostly not audio. */
const TRACK_TYPE_VIDEO = 1;

export interface MatroskaDuration {
  readonly seconds: number;
  /** `webm` or `matroska`, from the EBML header's DocType. */
  readonly format: string;
  /** The audio track's CodecID (`A_OPUS`, `A_AAC`, ...), when the head names one. */
  readonly codecId: string | undefined;
  /** Whether a track is video: the file's bytes then say nothing about its audio's length. */
  readonly hasVideo: boolean;
}

interface Element {
  readonly id: number;
  /** Where the element's body starts. */
  readonly body: number;
  /** Where it ends: the file's end for an unknown size (a live writer's Segment and Clusters), never past it. */
  readonly end: number;
  readonly isSizeUnknown: boolean;
}

/** An EBML variable-length integer: its value (with the length marker for an ID) and its byte length. */
function readVint(
  bytes: Uint8Array,
  offset: number,
  isId: boolean,
): { value: number; length: number; isAllOnes: boolean } | undefined {
  const first = bytes[offset];
  if (first === undefined || first === 0) return undefined;
  const length = Math.clz32(first) - 23;
  if ((isId && length > 4) || offset + length > bytes.byteLength) return undefined;
  const marker = 0x80 >> (length - 1);
  let value = isId ? first : first & (marker - 1);
  let isAllOnes = (first & (marker - 1)) === marker - 1;
  for (let index = 1; index < length; index += 1) {
    const byte = bytes[offset + index] ?? 0;
    value = value * 256 + byte;
    if (byte !== 0xff) isAllOnes = false;
  }
  return { value, length, isAllOnes };
}

function readElement(bytes: Uint8Array, offset: number, parentEnd: number): Element | undefined {
  const id = readVint(bytes, offset, true);
  if (id === undefined) return undefined;
  const size = readVint(bytes, offset + id.length, false);
  if (size === undefined) return undefined;
  const body = offset + id.length + size.length;
  if (body > parentEnd) return undefined;
  const isSizeUnknown = size.isAllOnes;
  return { id: id.value, body, end: isSizeUnknown ? parentEnd : Math.min(parentEnd, body + size.value), isSizeUnknown };
}

function readUnsigned(bytes: Uint8Array, element: Element): number | undefined {
  const length = element.end - element.body;
  if (length < 1 || length > 8) return undefined;
  let value = 0;
  for (let index = element.body; index < element.end; index += 1) value = value * 256 + (bytes[index] ?? 0);
  return value;
}

function readFloat(view: DataView, element: Element): number | undefined {
  const length = element.end - element.body;
  if (length === 4) return view.getFloat32(element.body);
  if (length === 8) return view.getFloat64(element.body);
  return undefined;
}

function readString(bytes: Uint8Array, element: Element): string {
  const end = Math.min(element.end, element.body + 64);
  let text = "";
  for (let index = element.body; index < end && bytes[index] !== 0; index += 1) {
    text += String.fromCharCode(bytes[index] ?? 0);
  }
  return text;
}

/** The children of [start, end), at most MAX_ELEMENTS, stopping at an unreadable one. */
function* children(bytes: Uint8Array, start: number, end: number): Generator<Element> {
  let offset = start;
  for (let count = 0; offset < end && count < MAX_ELEMENTS; count += 1) {
    const element = readElement(bytes, offset, end);
    if (element === undefined) return;
    yield element;
    if (element.isSizeUnknown) return;
    offset = element.end;
  }
}

/** Undefined when `bytes` is not Matroska, or says nothing of its length (no Duration, no Cluster in the tail). */
export function matroskaDuration(bytes: Uint8Array, view: DataView): MatroskaDuration | undefined {
  const header = readElement(bytes, 0, bytes.byteLength);
  if (header === undefined || header.id !== EBML || header.isSizeUnknown) return undefined;
  let format = "matroska";
  for (const element of children(bytes, header.body, header.end)) {
    if (element.id === DOC_TYPE && readString(bytes, element) === "webm") format = "webm";
  }
  const segment = readElement(bytes, header.end, bytes.byteLength);
  if (segment === undefined || segment.id !== SEGMENT) return undefined;
  const head = readHead(bytes, view, segment);
  const infoSeconds =
    head.durationTicks !== undefined && Number.isFinite(head.durationTicks) && head.durationTicks > 0
      ? (head.durationTicks * head.timecodeScaleNs) / 1e9
      : undefined;
  const lastTicks = lastBlockEndTicks(bytes, view, Math.max(segment.body, bytes.byteLength - MATROSKA_TAIL_BYTES));
  const tailSeconds =
    lastTicks === undefined ? undefined : (lastTicks * head.timecodeScaleNs + (head.defaultDurationNs ?? 0)) / 1e9;
  if (infoSeconds === undefined && tailSeconds === undefined) return undefined;
  // Both are the writer's word; the later one is taken, so that neither a short Duration nor a short last timestamp
  // alone passes a long file as short.
  const seconds = Math.max(infoSeconds ?? 0, tailSeconds ?? 0);
  return { seconds, format, codecId: head.codecId, hasVideo: head.hasVideo };
}

interface Head {
  timecodeScaleNs: number;
  durationTicks: number | undefined;
  codecId: string | undefined;
  defaultDurationNs: number | undefined;
  hasVideo: boolean;
}

function readHead(bytes: Uint8Array, view: DataView, segment: Element): Head {
  const head: Head = {
    timecodeScaleNs: DEFAULT_TIMECODE_SCALE_NS,
    durationTicks: undefined,
    codecId: undefined,
    defaultDurationNs: undefined,
    hasVideo: false,
  };
  const headEnd = Math.min(segment.end, HEAD_BYTES);
  for (const element of children(bytes, segment.body, headEnd)) {
    if (element.id === CLUSTER) break;
    if (element.id === INFO) {
      for (const field of children(bytes, element.body, element.end)) {
        if (field.id === TIMECODE_SCALE) {
          const scale = readUnsigned(bytes, field);
          if (scale !== undefined && scale > 0) head.timecodeScaleNs = scale;
        }
        if (field.id === DURATION) head.durationTicks = readFloat(view, field);
      }
    }
    if (element.id === TRACKS) readTracks(bytes, element, head);
  }
  return head;
}

function readTracks(bytes: Uint8Array, tracks: Element, head: Head): void {
  for (const entry of children(bytes, tracks.body, tracks.end)) {
    if (entry.id !== TRACK_ENTRY) continue;
    let type: number | undefined;
    let codecId: string | undefined;
    let defaultDurationNs: number | undefined;
    for (const field of children(bytes, entry.body, entry.end)) {
      if (field.id === TRACK_TYPE) type = readUnsigned(bytes, field);
      if (field.id === CODEC_ID) codecId = readString(bytes, field);
      if (field.id === DEFAULT_DURATION) defaultDurationNs = readUnsigned(bytes, field);
    }
    if (type === TRACK_TYPE_VIDEO) head.hasVideo = true;
    else if (head.codecId === undefined && codecId?.startsWith("A_") === true) {
      head.codecId = codecId;
      head.defaultDurationNs = defaultDurationNs;
    }
  }
}

/**
 * The end of the last block, in ticks: the last Cluster starting at or after `from` (searched back from the end),
 * its Timecode plus its last block's relative timestamp (and BlockDuration when given).
 */
function lastBlockEndTicks(bytes: Uint8Array, view: DataView, from: number): number | undefined {
  let tried = 0;
  // Shared by every candidate: a tail of fake Cluster IDs, each before a long run of tiny elements, is walked once.
  const steps = { left: MAX_TAIL_STEPS };
  for (let offset = bytes.byteLength - 4; offset >= from && tried < MAX_ELEMENTS && steps.left > 0; offset -= 1) {
    if (bytes[offset] !== 0x1f || bytes[offset + 1] !== 0x43 || bytes[offset + 2] !== 0xb6) continue;
    if (bytes[offset + 3] !== 0x75) continue;
    tried += 1;
    const cluster = readElement(bytes, offset, bytes.byteLength);
    if (cluster === undefined) continue;
    const ticks = clusterEndTicks(bytes, view, cluster, steps);
    if (ticks !== undefined) return ticks;
  }
  return undefined;
}

function clusterEndTicks(
  bytes: Uint8Array,
  view: DataView,
  cluster: Element,
  steps: { left: number },
): number | undefined {
  let clusterTicks: number | undefined;
  let lastEnd: number | undefined;
  const blockEnd = (block: Element, durationTicks: number): void => {
    const track = readVint(bytes, block.body, false);
    if (track === undefined || clusterTicks === undefined) return;
    const at = block.body + track.length;
    if (at + 2 > block.end) return;
    const end = clusterTicks + view.getInt16(at) + durationTicks;
    lastEnd = Math.max(lastEnd ?? end, end);
  };
  let offset = cluster.body;
  for (; offset < cluster.end && steps.left > 0; steps.left -= 1) {
    const element = readElement(bytes, offset, cluster.end);
    // A live writer's Cluster has no size: it ends where the next top-level element (a Cluster, Cues) begins.
    if (element === undefined || element.id === CLUSTER || element.isSizeUnknown) break;
    if (element.id === CLUSTER_TIMECODE) clusterTicks = readUnsigned(bytes, element);
    if (element.id === SIMPLE_BLOCK) blockEnd(element, 0);
    if (element.id === BLOCK_GROUP) {
      let block: Element | undefined;
      let durationTicks = 0;
      for (const field of children(bytes, element.body, element.end)) {
        steps.left -= 1;
        if (field.id === BLOCK) block = field;
        if (field.id === BLOCK_DURATION) durationTicks = readUnsigned(bytes, field) ?? 0;
      }
      if (block !== undefined) blockEnd(block, durationTicks);
    }
    offset = element.end;
  }
  if (clusterTicks === undefined) return undefined;
  return Math.max(0, lastEnd ?? clusterTicks);
}
