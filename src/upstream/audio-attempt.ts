// A text-to-speech attempt whose audio is relayed as it arrives (streaming/relay-audio.ts): the answer is judged
// from its status, its content type and its first bytes, before anything is sent to the client, so that failover
// stays possible until then; from the first byte on, the body belongs to the relay. The call and its status are
// handled as a stream's are (responded-attempt.ts); this reads a 2xx answer.
import type { Dispatcher } from "undici";
import { parseJsonRecord } from "../is-record.ts";
import type { HeaderMap } from "../limits/header-map.ts";
import { IdleTimeoutError, nextChunkWithin, type OpenedAudio } from "../streaming/relay-audio.ts";
import { type AttemptContext, type AttemptResult, failed, networkFailure } from "./attempt-context.ts";
import { binaryAnswer, isAudioType } from "./json-attempt.ts";
import { failureLesson, lessonsFromHeaders } from "./lessons.ts";
import { type BoundedBody, readBodyBounded } from "./read-body.ts";
import type { UpstreamCall } from "./upstream-request.ts";

/** Relayed speech's 2xx answer (responded-attempt.ts sent the call and judged its status). */
export async function audioAnswer(
  context: AttemptContext,
  response: Dispatcher.ResponseData,
  call: UpstreamCall,
  sentAtMs: number,
  headersMs: number,
  _extra: undefined,
): Promise<AttemptResult> {
  const { deployment, clock, controller, limits } = context;
  const { statusCode } = response;
  const headers = response.headers as HeaderMap;
  const contentType = headers["content-type"] === undefined ? "" : String(headers["content-type"]);
  const mediaType = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  if (contentType.includes("json")) {
    // Said to be JSON: an error in a 200, or no answer at all; read whole (bounded) and judged as before.
    const read = await readBounded(response, limits.maxErrorBodyBytes, context);
    if (!read.ok) return read.failure;
    const effects = lessonsFromHeaders(headers, deployment.provider.settings, sentAtMs);
    return binaryAnswer(context, statusCode, headers, Buffer.from(read.body.text), effects, headersMs, call);
  }
  if (!isAudioType(mediaType)) {
    controller.abort();
    return failed(
      failureLesson("bad_response", `HTTP ${statusCode} with a ${mediaType} body instead of audio`),
      statusCode,
    );
  }
  const iterator = (response.body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  const idleMs = deployment.provider.settings.streamIdleTimeoutMs;
  // Until the commit the client gets nothing, so the whole wait (for the first byte, then for a held start to end or
  // prove itself audio) is bounded by the silence the provider is allowed before its first byte: one deadline, not a
  // timer restarted by every chunk, which an upstream trickling a byte at a time kept from ever firing.
  const holdEndsAtMs = clock.now() + idleMs;
  const held: Uint8Array[] = [];
  let heldBytes = 0;
  try {
    // A body that starts with `{` may be a JSON error labelled as audio (or untyped): held until it ends within
    // `max_error_body_bytes` (then judged whole, as a buffered answer was), outgrows it, or shows a byte that JSON
    // text never has (raw `pcm` may start with `{`: it is audio after all). Any other first byte commits at once.
    for (;;) {
      const chunk = await nextChunkWithin(iterator, Math.max(1, holdEndsAtMs - clock.now()), controller);
      if (chunk === undefined) break;
      held.push(chunk);
      heldBytes += chunk.byteLength;
      if (held[0]?.[0] !== 0x7b || heldBytes > limits.maxErrorBodyBytes || !isJsonTextBytes(chunk)) {
        return committed(context, statusCode, headers, contentType, { iterator, held, sentAtMs, headersMs });
      }
    }
  } catch (error) {
    if (error instanceof IdleTimeoutError && !context.request.signal.aborted) {
      // A whole JSON object, on a connection the provider kept open: the error it is (a rate limit cools the
      // deployment down as a 429 does), judged once at the cap, not blamed as a stall.
      const whole = Buffer.concat(held, heldBytes);
      if (heldBytes > 0 && isJsonObjectText(whole)) {
        const effects = lessonsFromHeaders(headers, deployment.provider.settings, sentAtMs);
        return binaryAnswer(context, statusCode, headers, whole, effects, headersMs, call);
      }
      const reason =
        heldBytes === 0
          ? `no data for stream_idle_timeout_ms (${idleMs} ms)`
          : `a body starting with \`{\` (${heldBytes} bytes) neither ended nor proved to be audio within stream_idle_timeout_ms (${idleMs} ms)`;
      return failed(failureLesson("timeout", reason), statusCode, undefined, headersMs);
    }
    return networkFailure(error, context);
  }
  // The whole body came within the bound (or none came): judged as a buffered answer (empty, JSON, or short audio).
  const effects = lessonsFromHeaders(headers, deployment.provider.settings, sentAtMs);
  const whole = Buffer.concat(held, heldBytes);
  return binaryAnswer(context, statusCode, headers, whole, effects, headersMs, call);
}

function committed(
  context: AttemptContext,
  statusCode: number,
  headers: HeaderMap,
  contentType: string,
  read: { iterator: AsyncIterator<Uint8Array>; held: Uint8Array[]; sentAtMs: number; headersMs: number },
): AttemptResult {
  const { deployment, clock } = context;
  const audio: OpenedAudio = {
    iterator: read.iterator,
    heldChunks: read.held,
    contentType: contentType === "" ? "application/octet-stream" : contentType,
    contentEncoding: headers["content-encoding"] === undefined ? undefined : String(headers["content-encoding"]),
    controller: context.controller,
    streamIdleTimeoutMs: deployment.provider.settings.streamIdleTimeoutMs,
    startedAtMs: read.sentAtMs,
  };
  return {
    ok: true,
    audio,
    status: statusCode,
    effects: lessonsFromHeaders(headers, deployment.provider.settings, read.sentAtMs),
    headersMs: read.headersMs,
    firstTokenMs: clock.now() - read.sentAtMs,
  };
}

/**
 * Whether these bytes may be part of JSON text: JSON has no raw control bytes but tab, line feed and carriage return
 * (a string escapes the others), while raw audio samples are full of them. One pass over at most
 * `max_error_body_bytes`, so a `pcm` answer that starts with `{` is relayed from its first chunk, not held.
 */
function isJsonTextBytes(chunk: Uint8Array): boolean {
  for (const byte of chunk) {
    if (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) return false;
  }
  return true;
}

/** Held bytes that are one whole JSON object (parsed once, at the hold's cap: at most `max_error_body_bytes`). */
function isJsonObjectText(bytes: Buffer): boolean {
  return parseJsonRecord(bytes.toString("utf8")) !== undefined;
}

async function readBounded(
  response: Dispatcher.ResponseData,
  maxBytes: number,
  context: AttemptContext,
): Promise<{ ok: true; body: BoundedBody } | { ok: false; failure: AttemptResult }> {
  try {
    const body = await readBodyBounded(response.body, maxBytes);
    // Enough to judge; the rest of a huge body is never read (the connection is closed).
    if (body.isTruncated) context.controller.abort();
    return { ok: true, body };
  } catch (error) {
    return { ok: false, failure: networkFailure(error, context) };
  }
}
