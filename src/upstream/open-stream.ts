// The part of a streamed attempt that happens before anything reaches the client: wait for the first content
// event (bounded by `first_token_timeout_ms`), and treat an error event, an early end or silence as a failed
// attempt, so the failover loop can try the next candidate. Only a stream that has produced content is
// "opened" and handed to the relay.
import type { Dispatcher } from "undici";
import type { HeaderMap } from "../limits/header-map.ts";
import { type RequestTimer, requestTimers } from "../request-timers.ts";
import type { OpenedStream } from "../streaming/opened-stream.ts";
import { type SseEvent, SseLimitError, SseParser } from "../streaming/sse-parser.ts";
import { classifyErrorInSuccess, type Verdict } from "./classify-response.ts";
import { classifyNetworkError } from "./upstream-request.ts";

export type { OpenedStream } from "../streaming/opened-stream.ts";

import { abortReasonText } from "../errors/gateway-error.ts";
import type { EventInspector, StreamEventInfo } from "../streaming/stream-event.ts";

export type OpenStreamResult =
  | { readonly ok: true; readonly stream: OpenedStream }
  | {
      readonly ok: false;
      readonly failure:
        | "first_token_timeout"
        | "timeout"
        | "cut"
        | "error_event"
        | "not_a_stream"
        | "no_content"
        | "too_large"
        | "malformed"
        | "client_aborted";
      readonly reason: string;
      readonly verdict?: Verdict;
    };

/**
 * Whether the request's total time ran out during the attempt (attempt.ts sets it at its deadline): only read, never
 * listened to, so a flag rather than an AbortController and its signal, which every attempt, JSON ones too, made.
 */
export interface DeadlineFlag {
  readonly aborted: boolean;
}

export interface OpenStreamInput {
  readonly body: Dispatcher.ResponseData["body"];
  readonly headers: HeaderMap;
  readonly controller: AbortController;
  readonly signal: AbortSignal;
  readonly deadline: DeadlineFlag;
  readonly clientSignal: AbortSignal;
  readonly firstTokenTimeoutMs: number;
  readonly streamIdleTimeoutMs: number;
  /** `upstream_limits.max_stream_event_chars`: one line, one event, and all events before the first content. */
  readonly maxEventChars: number;
  /** `upstream_limits.max_error_body_bytes`: what is read of a JSON answer to a stream request. */
  readonly maxErrorBodyBytes: number;
  /** Reads the stream's events: chat chunks (`inspectEvent`) or a native protocol's events. */
  readonly inspect: EventInspector;
  nowMs(): number;
}

export async function openStream(input: OpenStreamInput): Promise<OpenStreamResult> {
  const startedAtMs = input.nowMs();
  const pendingEvents: SseEvent[] = [];
  // Events before the first content (role-only chunks, empty deltas) wait here until content arrives; their
  // total size is bounded like one event's, so an upstream that never gets to content cannot grow memory.
  // (Once relayed, the relay empties the list after every upstream chunk, and the count starts again.)
  let pendingChars = 0;
  const parser = new SseParser(
    (event) => {
      if (pendingEvents.length === 0) pendingChars = 0;
      pendingChars += event.data.length;
      if (pendingChars > input.maxEventChars) throw new SseLimitError("event", input.maxEventChars);
      pendingEvents.push(event);
    },
    { maxEventChars: input.maxEventChars },
  );
  const body = input.body;
  // Made only when the body has nothing buffered: see `LazyBodyIterator`.
  let iterator: AsyncIterator<Uint8Array> | undefined;
  let isFirstTokenLate = false;
  // Started at the first wait for the upstream: a stream opened from what was buffered needs no timer (one set and
  // cleared less on the way to the first byte). Only synchronous work comes before it, so it is started with the
  // whole `first_token_timeout_ms` (a few µs late at most) rather than from the clock, which a test may have moved.
  let timer: RequestTimer | undefined;
  const startTimer = (): void => {
    timer ??= requestTimers.after(input.firstTokenTimeoutMs, () => {
      isFirstTokenLate = true;
      input.controller.abort();
    });
  };
  const fail = (result: OpenStreamResult & { ok: false }): OpenStreamResult => {
    input.controller.abort();
    return result;
  };
  try {
    const contentType = String(input.headers["content-type"] ?? "");
    if (!contentType.includes("text/event-stream")) {
      startTimer();
      return fail(await notAStream(body[Symbol.asyncIterator](), contentType, input));
    }
    let scanned = 0;
    let hasSeenChoice = false;
    // Content came: the stream opens once the events already read are looked at too (none has gone out yet).
    let isOpen = false;
    const inspected = new Map<SseEvent, StreamEventInfo>();
    for (;;) {
      // What undici has already buffered (the first chunk usually came in the head's socket read) is taken at once,
      // without the body's async iterator: no iterator, end-of-stream listeners or promise on the way to the first
      // byte. A destroyed body reads as nothing, as in the iterator (which then throws its error or ends).
      let chunk = body.destroyed ? null : (body.read() as Uint8Array | null);
      if (chunk === null) {
        iterator ??= body[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
        startTimer();
        const next = await iterator.next();
        if (next.done) {
          return fail({ ok: false, failure: "cut", reason: "the stream ended before any content" });
        }
        chunk = next.value;
      }
      parser.push(chunk);
      for (; scanned < pendingEvents.length; scanned++) {
        const event = pendingEvents[scanned] as SseEvent;
        const info = input.inspect(event);
        inspected.set(event, info);
        // A malformed native Responses event (streaming/responses-stream-check.ts) anywhere before the client's first
        // byte: the attempt is a `bad_response`, as the same answer as JSON is, and the next candidate is tried.
        if (info.fault !== undefined) return fail({ ok: false, failure: "malformed", reason: info.fault });
        if (isOpen) continue;
        if (info.isError) {
          const verdict = classifyErrorInSuccess(errorEnvelope(info.json), input.headers, input.nowMs());
          const reason =
            verdict !== undefined && "reason" in verdict ? verdict.reason : "error event before any content";
          return fail(
            verdict === undefined
              ? { ok: false, failure: "error_event", reason }
              : { ok: false, failure: "error_event", reason, verdict },
          );
        }
        if (hasChoices(info.json)) hasSeenChoice = true;
        if (info.isDone && !hasSeenChoice) {
          // `[DONE]` before any choice (alone, after malformed events or usage only) ends an empty answer: relayed,
          // it reached the client as a 200 with nothing in it, and the next candidate was never tried.
          return fail({ ok: false, failure: "no_content", reason: "the stream ended ([DONE]) before any choice" });
        }
        if (info.hasContent || info.isDone) isOpen = true;
      }
      if (isOpen) {
        return {
          ok: true,
          stream: {
            iterator: iterator ?? new LazyBodyIterator(body),
            parser,
            pendingEvents,
            controller: input.controller,
            streamIdleTimeoutMs: input.streamIdleTimeoutMs,
            startedAtMs,
            inspect: input.inspect,
            inspected,
          },
        };
      }
    }
  } catch (error) {
    input.controller.abort();
    return failureOf(error, input, isFirstTokenLate);
  } finally {
    timer?.cancel();
  }
}

/**
 * The body's async iterator, made at the relay's first read of the upstream, which comes after the first batch was
 * written and flushed (relay-segment.ts `onUpstreamWait`): a stream opened from what undici had buffered makes its
 * iterator (a generator, its end-of-stream listeners) off the path to the client's first byte.
 */
class LazyBodyIterator implements AsyncIterator<Uint8Array> {
  #inner: AsyncIterator<Uint8Array> | undefined;
  readonly #body: OpenStreamInput["body"];

  constructor(body: OpenStreamInput["body"]) {
    this.#body = body;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    this.#inner ??= this.#body[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
    return this.#inner.next();
  }
}

/**
 * A chat chunk with at least one choice (a role-only chunk counts: the answer has begun). A usage-only chunk
 * (`"choices": []`) does not, and a native Responses stream has none: there only content opens the stream.
 */
function hasChoices(json: Record<string, unknown> | undefined): boolean {
  const choices = json?.choices;
  return Array.isArray(choices) && choices.length > 0;
}

/**
 * An error event as `{"error": {...}}`, the shape `classifyErrorInSuccess` reads: chat providers send it so; a
 * Responses stream's `error` event is the error itself, and `response.failed` carries it in `response.error`. A chat
 * chunk's error is taken alone: OpenRouter's sits beside a choice that adds nothing (`finish_reason: "error"`), and
 * with its `choices` the chunk read as an answer, not an error (its overload a blip, the candidate asked again).
 */
function errorEnvelope(json: Record<string, unknown> | undefined): unknown {
  if (json === undefined) return json;
  if (json.error !== undefined) return { error: json.error };
  if (json.type === "error") return { error: json };
  const response = json.response as { error?: unknown } | undefined;
  return response?.error === undefined ? json : { error: response.error };
}

/** Some providers answer a stream request with a JSON error (status 200) instead of SSE. */
async function notAStream(
  iterator: AsyncIterator<Uint8Array>,
  contentType: string,
  input: OpenStreamInput,
): Promise<OpenStreamResult & { ok: false }> {
  const text = await readRest(iterator, input.maxErrorBodyBytes);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return {
      ok: false,
      failure: "not_a_stream",
      reason: `expected an event stream, got ${contentType || "no content type"}`,
    };
  }
  const verdict = classifyErrorInSuccess(json, input.headers, input.nowMs());
  if (verdict !== undefined) return { ok: false, failure: "error_event", reason: "error instead of a stream", verdict };
  return { ok: false, failure: "not_a_stream", reason: "the upstream answered JSON to a stream request" };
}

/** Why the wait for the first content ended in an exception: a bound, the client, a timer, or the network. */
function failureOf(
  error: unknown,
  input: OpenStreamInput,
  isFirstTokenLate: boolean,
): OpenStreamResult & { ok: false } {
  if (error instanceof SseLimitError) return { ok: false, failure: "too_large", reason: error.message };
  if (input.clientSignal.aborted) {
    return { ok: false, failure: "client_aborted", reason: abortReasonText(input.clientSignal) };
  }
  if (isFirstTokenLate) {
    return {
      ok: false,
      failure: "first_token_timeout",
      reason: `no content within first_token_timeout_ms (${input.firstTokenTimeoutMs} ms)`,
    };
  }
  if (input.deadline.aborted) return { ok: false, failure: "timeout", reason: "the request's total time ran out" };
  const network = classifyNetworkError(error);
  return { ok: false, failure: network.kind === "timeout" ? "timeout" : "cut", reason: network.reason };
}

/** The body's text, at most about `maxBytes` of it (a longer one is not a JSON error worth reading). */
async function readRest(iterator: AsyncIterator<Uint8Array>, maxBytes: number): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  let bytes = 0;
  for (;;) {
    const next = await iterator.next();
    if (next.done) return text + decoder.decode();
    bytes += next.value.byteLength;
    text += decoder.decode(next.value, { stream: true });
    if (bytes > maxBytes) return text;
  }
}
