// W3C Trace Context (https://www.w3.org/TR/trace-context/): a caller's `traceparent` continued through the gateway.
// The request gets one span id of its own and each upstream attempt another, sent as the attempt's `traceparent`
// with the caller's trace id; read by server/ (the incoming headers), upstream/ (the attempt's header) and
// observability/ (the exported spans).
import { randomFillSync } from "node:crypto";

/** A request's place in a trace: what its record keeps (RequestRecord.trace) and its attempts are sent under. */
export interface TraceContext {
  /** 32 lowercase hex digits: the caller's, or a new one when the gateway starts the trace (export on). */
  readonly traceId: string;
  /** The gateway's span for the whole request (16 hex). */
  readonly spanId: string;
  /** The caller's span (its `traceparent`'s parent-id); absent when the gateway started the trace. */
  readonly parentSpanId?: string;
  /** The sampled flag sent on (and whether the spans are exported, with an exporter). */
  readonly isSampled: boolean;
  /** The caller's `tracestate`, sent on as received (a valid list only); never stored in the record. */
  readonly traceState?: string;
}

/**
 * Whether a trace is recorded: given the trace id and the caller's sampled flag (undefined: the gateway starts the
 * trace). Present only when spans are exported (observability/trace-sampler.ts).
 */
export type TraceSampler = (traceId: string, parentSampled: boolean | undefined) => boolean;

const ZERO_TRACE_ID = "0".repeat(32);
const ZERO_SPAN_ID = "0".repeat(16);
/** W3C: at most 32 list members; a list longer than 512 characters may be cut, we drop it instead. */
const MAX_TRACESTATE_MEMBERS = 32;
const MAX_TRACESTATE_CHARS = 512;
/** `key=value` list members (simple-key / tenant@system keys; values of printable ASCII without `,` and `=`). */
const TRACESTATE_MEMBER =
  /^[a-z0-9][_0-9a-z\-*/]{0,255}(@[a-z][_0-9a-z\-*/]{0,13})?=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

interface Traceparent {
  readonly traceId: string;
  readonly parentSpanId: string;
  readonly isSampled: boolean;
}

/**
 * The trace-id, parent-id and sampled flag of a `traceparent` header, or undefined when it is not valid by the W3C
 * rules: version `ff`, an all-zero id, a wrong length, uppercase hex. A header sent twice (Node joins the two with
 * `, `) is not valid either, as the spec asks. A later version is read for its first four fields, as the spec says.
 */
export function parseTraceparent(header: unknown): Traceparent | undefined {
  if (typeof header !== "string" || header.length < 55) return undefined;
  // Character codes, not regular expressions and slices: this runs on every request that carries the header.
  if (!isLowerHex(header, 0, 2) || (header.charCodeAt(0) === 0x66 && header.charCodeAt(1) === 0x66)) return undefined;
  const isVersion00 = header.charCodeAt(0) === 0x30 && header.charCodeAt(1) === 0x30;
  if (isVersion00 ? header.length !== 55 : header.length > 55 && header[55] !== "-") return undefined;
  if (header[2] !== "-" || header[35] !== "-" || header[52] !== "-") return undefined;
  if (!isLowerHex(header, 3, 35) || !isLowerHex(header, 36, 52) || !isLowerHex(header, 53, 55)) return undefined;
  if (isZeros(header, 3, 35) || isZeros(header, 36, 52)) return undefined;
  return {
    traceId: header.slice(3, 35),
    parentSpanId: header.slice(36, 52),
    isSampled: (hexValue(header.charCodeAt(54)) & 1) === 1,
  };
}

/** Whether `text[start, end)` is lowercase hex digits only. */
function isLowerHex(text: string, start: number, end: number): boolean {
  for (let index = start; index < end; index++) {
    const code = text.charCodeAt(index);
    if (!((code >= 0x30 && code <= 0x39) || (code >= 0x61 && code <= 0x66))) return false;
  }
  return true;
}

function isZeros(text: string, start: number, end: number): boolean {
  for (let index = start; index < end; index++) if (text.charCodeAt(index) !== 0x30) return false;
  return true;
}

/** A lowercase hex digit's value. */
function hexValue(code: number): number {
  return code <= 0x39 ? code - 0x30 : code - 0x61 + 10;
}

/** The `tracestate` to send on: the list as received when it is valid, else undefined (never its invalid members). */
export function validTracestate(header: unknown): string | undefined {
  // Several `tracestate` headers are one list (Node joins them with `, `).
  const text = Array.isArray(header) ? header.join(",") : header;
  if (typeof text !== "string" || text.length > MAX_TRACESTATE_CHARS) return undefined;
  const members = text.split(",").map((member) => member.trim());
  const kept = members.filter((member) => member !== "");
  if (kept.length === 0 || kept.length > MAX_TRACESTATE_MEMBERS) return undefined;
  const keys = new Set<string>();
  for (const member of kept) {
    if (!TRACESTATE_MEMBER.test(member)) return undefined;
    const key = member.slice(0, member.indexOf("="));
    if (keys.has(key)) return undefined;
    keys.add(key);
  }
  return kept.join(",");
}

/**
 * The request's trace: the caller's continued (a new span id for the gateway's request), or, without a valid
 * `traceparent`, a new trace when spans are exported (`sampler` present) and none otherwise: with export off a request
 * without the header costs nothing and sends nothing upstream.
 */
export function requestTrace(
  traceparent: unknown,
  tracestate: unknown,
  sampler: TraceSampler | undefined,
): TraceContext | undefined {
  const parent = parseTraceparent(traceparent);
  if (parent === undefined) {
    if (sampler === undefined) return undefined;
    const traceId = newTraceId();
    return { traceId, spanId: newSpanId(), isSampled: sampler(traceId, undefined) };
  }
  const traceState = validTracestate(tracestate);
  return {
    traceId: parent.traceId,
    spanId: newSpanId(),
    parentSpanId: parent.parentSpanId,
    isSampled: sampler === undefined ? parent.isSampled : sampler(parent.traceId, parent.isSampled),
    ...(traceState === undefined ? {} : { traceState }),
  };
}

/** The `traceparent` an attempt is sent: the request's trace id, the attempt's own span id. */
export function traceparentOf(trace: Pick<TraceContext, "traceId" | "isSampled">, spanId: string): string {
  return `00-${trace.traceId}-${spanId}-${trace.isSampled ? "01" : "00"}`;
}

/**
 * Random bytes taken from a pool filled 4 KiB at a time: one `randomFillSync` per 256 span ids instead of one call
 * (and one Buffer) each.
 */
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let poolOffset = POOL_BYTES;

const HEX_BYTES = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

function randomHex(bytes: number): string {
  if (poolOffset + bytes > POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  let hex = "";
  for (let index = poolOffset; index < poolOffset + bytes; index++) hex += HEX_BYTES[pool[index] as number];
  poolOffset += bytes;
  return hex;
}

export function newSpanId(): string {
  const id = randomHex(8);
  // All zeros is invalid (W3C); one chance in 2^64.
  return id === ZERO_SPAN_ID ? newSpanId() : id;
}

export function newTraceId(): string {
  const id = randomHex(16);
  return id === ZERO_TRACE_ID ? newTraceId() : id;
}
