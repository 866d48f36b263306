// One upstream attempt: send, wait for headers (bounded by `timeout_ms`), classify the answer, and for a stream
// wait for its first content (open-stream.ts). It reports what happened and what it taught; it changes no state.
import type { Dispatcher } from "undici";
import type { Clock } from "../clock.ts";
import type { UpstreamLimits } from "../config/types.ts";
import type { HeaderMap } from "../limits/header-map.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { OpenedStream } from "../streaming/opened-stream.ts";
import type { TokenUsage } from "../streaming/relay-types.ts";
import { inspectEvent, inspectResponsesEvent } from "../streaming/stream-event.ts";
import { type BufferedResponse, bufferedCall } from "./buffered-call.ts";
import type { Verdict } from "./classify-response.ts";
import { classifyErrorInSuccess, classifyResponse } from "./classify-response.ts";
import type { ForwardRequest, JsonResult, NativeCall, UpstreamApi } from "./forward-types.ts";
import { type Effect, failureLesson, type Lesson, lessonFromVerdict, lessonsFromHeaders } from "./lessons.ts";
import { openStream } from "./open-stream.ts";
import { type BoundedBody, readBodyBounded } from "./read-body.ts";
import {
  buildPayload,
  classifyNetworkError,
  requestOptions,
  sendUpstream,
  type UpstreamCall,
} from "./upstream-request.ts";

export type AttemptResult =
  | {
      readonly ok: true;
      readonly json?: JsonResult;
      readonly stream?: { readonly opened: OpenedStream; readonly isUsageInjected: boolean; readonly api: UpstreamApi };
      readonly status: number;
      readonly effects: readonly Effect[];
      readonly usage?: TokenUsage;
      readonly headersMs: number;
      readonly firstTokenMs?: number;
    }
  | {
      readonly ok: false;
      readonly lesson: Lesson;
      readonly status: number | undefined;
      readonly verdict?: Verdict;
      readonly headersMs?: number;
    };

export interface AttemptServices {
  readonly dispatcher: Dispatcher;
  readonly clock: Clock;
  readonly limits: UpstreamLimits;
}

interface AttemptContext {
  readonly deployment: Deployment;
  readonly request: ForwardRequest;
  readonly dispatcher: Dispatcher;
  readonly clock: Clock;
  readonly limits: UpstreamLimits;
  /** Gives the provider's in-flight slot back; called once the upstream response is over (or never came). */
  readonly releaseSlot: () => void;
  readonly remainingMs: number;
  readonly controller: AbortController;
  readonly deadline: AbortSignal;
  /** The request in the client's own protocol, when this candidate's provider speaks it natively. */
  readonly native: NativeCall | undefined;
  /** The API this candidate is called with: `chat`, or the native call's. */
  readonly api: UpstreamApi;
}

/**
 * `releaseSlot` frees the provider's in-flight slot (`max_in_flight`) that the caller took for this attempt:
 * it is called when the upstream response body closes (read to its end, or aborted), which for a stream is when
 * the relay is done with it, or at once when no response came.
 */
export async function attemptOnce(
  deployment: Deployment,
  request: ForwardRequest,
  services: AttemptServices,
  remainingMs: number,
  releaseSlot: () => void = () => {},
): Promise<AttemptResult> {
  const controller = new AbortController();
  const deadline = new AbortController();
  // A committed stream may outlive the request deadline (it has its own duration cap), so for streams the
  // deadline bounds only the phases before the first token, through headersTimeout and the first-token timer.
  // The attempt's signal is linked to the client and the deadline by hand and unlinked when the attempt ends.
  // AbortSignal.timeout + AbortSignal.any cost more: the timeout's timer outlives the attempt by `remainingMs`
  // (120 s by default), so under load every recent request stays in memory, and AbortSignal.any is costly per
  // call (bench/README.md: by hand, +20% JSON req/s per core and 400 MB less peak memory at 10k req/s).
  const deadlineTimer = setTimeout(() => {
    const reason = new DOMException("The operation was aborted due to timeout", "TimeoutError");
    deadline.abort(reason);
    if (!request.isStream) controller.abort(reason);
  }, remainingMs);
  deadlineTimer.unref();
  const onClientAbort = (): void => controller.abort(request.signal.reason);
  if (request.signal.aborted) onClientAbort();
  else request.signal.addEventListener("abort", onClientAbort, { once: true });
  try {
    return await attemptWithSignals({
      deployment,
      request,
      dispatcher: services.dispatcher,
      clock: services.clock,
      limits: services.limits,
      releaseSlot: once(releaseSlot),
      remainingMs,
      controller,
      deadline: deadline.signal,
      ...withNative(nativeCallFor(request, deployment)),
    });
  } finally {
    clearTimeout(deadlineTimer);
    request.signal.removeEventListener("abort", onClientAbort);
  }
}

/** Not async itself: it only picks the JSON or the stream path (one promise fewer per attempt). */
function attemptWithSignals(context: AttemptContext): Promise<AttemptResult> {
  const { deployment, request, remainingMs } = context;
  const settings = deployment.provider.settings;
  const headersTimeoutMs = Math.min(settings.timeoutMs, remainingMs);
  const { native } = context;
  // A native call is the client's own protocol, which has no `stream_options.include_usage` to add.
  const isUsageInjected =
    native === undefined && request.isStream && settings.injectStreamUsage && !clientAskedForUsage(request.body);
  const call: UpstreamCall = {
    deployment,
    endpointPath: native?.endpointPath ?? request.endpointPath,
    payload: buildPayload(native?.body ?? request.body, {
      upstreamModelId: deployment.model.id,
      shouldAskForUsage: isUsageInjected,
      supportsReasoning: deployment.capabilities.reasoning === true,
    }),
    isStream: request.isStream,
    headersTimeoutMs: headersTimeoutMs + 1_000,
    // Streams use their own first-token and idle timers (exact, and distinguishable in reasons); 0 disables undici's.
    bodyTimeoutMs: request.isStream ? 0 : Math.max(1, remainingMs),
    signal: context.controller.signal,
  };
  if (!request.isStream) return jsonAttempt(context, call, headersTimeoutMs);
  return streamAttempt(context, call, headersTimeoutMs, isUsageInjected);
}

/**
 * Our own timer for `timeout_ms`: undici's headersTimeout uses coarse shared timers (~1 s resolution), which would
 * make a 300 ms timeout fire after a second. undici's stays as a backstop (`headersTimeoutMs + 1_000` above).
 */
function startHeadersTimer(context: AttemptContext, headersTimeoutMs: number): { isLate: boolean; stop(): void } {
  const timer = {
    isLate: false,
    stop: () => clearTimeout(handle),
  };
  const handle = setTimeout(() => {
    timer.isLate = true;
    context.controller.abort();
  }, headersTimeoutMs);
  return timer;
}

/** A failure before any usable answer: our `timeout_ms`, or what the network or the client did. */
function sendFailure(
  error: unknown,
  context: AttemptContext,
  headersTimer: { readonly isLate: boolean },
  headersTimeoutMs: number,
): AttemptResult {
  if (headersTimer.isLate && !context.request.signal.aborted) {
    return failed(failureLesson("timeout", `no response headers within timeout_ms (${headersTimeoutMs} ms)`));
  }
  return networkFailure(error, context);
}

/**
 * A non-streamed call: the answer is read whole (bounded: `max_response_bytes` for a success, `max_error_body_bytes`
 * for an error, nothing of a redirect) by one undici handler, then classified.
 */
async function jsonAttempt(
  context: AttemptContext,
  call: UpstreamCall,
  headersTimeoutMs: number,
): Promise<AttemptResult> {
  const { clock, limits } = context;
  const sentAtMs = clock.now();
  let headersMs = 0;
  const headersTimer = startHeadersTimer(context, headersTimeoutMs);
  let response: BufferedResponse;
  try {
    response = await bufferedCall(context.dispatcher, requestOptions(call), {
      signal: call.signal,
      maxBodyBytes: (status) =>
        isRedirect(status) ? 0 : isSuccess(status) ? limits.maxResponseBytes : limits.maxErrorBodyBytes,
      onHeaders: () => {
        headersTimer.stop();
        headersMs = clock.now() - sentAtMs;
      },
    });
  } catch (error) {
    return sendFailure(error, context, headersTimer, headersTimeoutMs);
  } finally {
    headersTimer.stop();
    // The answer was read to its end or the call aborted: the connection is free again.
    context.releaseSlot();
  }
  const { statusCode, headers, text, isTruncated } = response;
  if (isRedirect(statusCode)) return redirectFailure(statusCode, headersMs);
  if (!isSuccess(statusCode)) return errorStatusFailure(context, statusCode, headers, text, headersMs);
  if (isTruncated) {
    return failed(
      failureLesson(
        "bad_response",
        `the response body is larger than max_response_bytes (${limits.maxResponseBytes} bytes)`,
      ),
      statusCode,
    );
  }
  const headerEffects = lessonsFromHeaders(headers, context.deployment.provider.settings, sentAtMs);
  return jsonAnswer(context, statusCode, headers, text, headerEffects, headersMs);
}

async function streamAttempt(
  context: AttemptContext,
  call: UpstreamCall,
  headersTimeoutMs: number,
  isUsageInjected: boolean,
): Promise<AttemptResult> {
  const { deployment, clock, controller } = context;
  const sentAtMs = clock.now();
  let response: Dispatcher.ResponseData;
  const headersTimer = startHeadersTimer(context, headersTimeoutMs);
  try {
    response = await sendUpstream(context.dispatcher, call);
  } catch (error) {
    context.releaseSlot();
    return sendFailure(error, context, headersTimer, headersTimeoutMs);
  } finally {
    headersTimer.stop();
  }
  // The body closes when it was read to its end or aborted: the connection is free again.
  response.body.once("close", context.releaseSlot);
  if (response.body.destroyed) context.releaseSlot();
  const headersMs = clock.now() - sentAtMs;
  const headers = response.headers as HeaderMap;
  if (isRedirect(response.statusCode)) {
    controller.abort();
    return redirectFailure(response.statusCode, headersMs);
  }
  if (!isSuccess(response.statusCode)) {
    let read: BoundedBody;
    try {
      // Enough to classify the error; the rest of a huge error body is never read (the connection is closed).
      read = await readBodyBounded(response.body, context.limits.maxErrorBodyBytes);
      if (read.isTruncated) controller.abort();
    } catch (error) {
      return networkFailure(error, context);
    }
    return errorStatusFailure(context, response.statusCode, headers, read.text, headersMs);
  }
  const headerEffects = lessonsFromHeaders(headers, deployment.provider.settings, sentAtMs);
  return streamAnswer(context, response, headerEffects, headersMs, isUsageInjected);
}

function isRedirect(statusCode: number): boolean {
  return statusCode >= 300 && statusCode < 400;
}

function isSuccess(statusCode: number): boolean {
  return statusCode >= 200 && statusCode < 300;
}

/**
 * undici does not follow redirects, and the gateway must not: a redirect (or a 304 to a POST) is not an answer
 * the client asked for, and relaying it would make it look like the gateway's own.
 */
function redirectFailure(statusCode: number, headersMs: number): AttemptResult {
  return failed(
    failureLesson("bad_response", `HTTP ${statusCode}: the upstream answered with a redirect`),
    statusCode,
    undefined,
    headersMs,
  );
}

function errorStatusFailure(
  context: AttemptContext,
  statusCode: number,
  headers: HeaderMap,
  bodyText: string,
  headersMs: number,
): AttemptResult {
  const { clock } = context;
  const verdict = classifyResponse(statusCode, headers, bodyText, clock.now());
  const lesson = lessonFromVerdict(verdict, context.deployment.provider.settings, clock.now(), { headers, bodyText });
  return failed(lesson, statusCode, verdict, headersMs);
}

async function streamAnswer(
  context: AttemptContext,
  response: Dispatcher.ResponseData,
  headerEffects: readonly Effect[],
  headersMs: number,
  isUsageInjected: boolean,
): Promise<AttemptResult> {
  const { deployment, request, clock, remainingMs, controller } = context;
  const settings = deployment.provider.settings;
  const sentAtMs = clock.now() - headersMs;
  const opened = await openStream({
    body: response.body,
    headers: response.headers as HeaderMap,
    controller,
    signal: controller.signal,
    deadline: context.deadline,
    clientSignal: request.signal,
    firstTokenTimeoutMs: Math.min(settings.firstTokenTimeoutMs, remainingMs),
    streamIdleTimeoutMs: settings.streamIdleTimeoutMs,
    maxEventChars: context.limits.maxStreamEventChars,
    maxErrorBodyBytes: context.limits.maxErrorBodyBytes,
    inspect: context.api === "chat" ? inspectEvent : inspectResponsesEvent,
    nowMs: () => clock.now(),
  });
  if (opened.ok) {
    return {
      ok: true,
      stream: { opened: opened.stream, isUsageInjected, api: context.api },
      status: response.statusCode,
      effects: headerEffects,
      headersMs,
      firstTokenMs: clock.now() - sentAtMs,
    };
  }
  if (opened.failure === "client_aborted") {
    return failed({ outcome: "client_aborted", reason: "client disconnected", effects: [] }, 200);
  }
  if (opened.verdict !== undefined) {
    return failed(
      lessonFromVerdict(opened.verdict, settings, clock.now()),
      response.statusCode,
      opened.verdict,
      headersMs,
    );
  }
  if (opened.failure === "too_large") {
    return failed(failureLesson("bad_response", opened.reason), response.statusCode, undefined, headersMs);
  }
  const outcome =
    opened.failure === "first_token_timeout"
      ? "first_token_timeout"
      : opened.failure === "timeout"
        ? "timeout"
        : "bad_response";
  return failed(failureLesson(outcome, opened.reason), response.statusCode, undefined, headersMs);
}

function jsonAnswer(
  context: AttemptContext,
  statusCode: number,
  headers: HeaderMap,
  bodyText: string,
  headerEffects: readonly Effect[],
  headersMs: number,
): AttemptResult {
  const { deployment, clock } = context;
  let json: unknown;
  try {
    json = JSON.parse(bodyText);
  } catch {
    return failed(failureLesson("bad_response", "HTTP 200 with a body that is not JSON"), statusCode);
  }
  const inBandError = classifyErrorInSuccess(json, headers, clock.now());
  if (inBandError !== undefined) {
    return failed(lessonFromVerdict(inBandError, deployment.provider.settings, clock.now()), statusCode, inBandError);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    // `null`, `[1,2,3]`, `"text"`: valid JSON, but no answer any client could use.
    return failed(
      failureLesson("bad_response", `HTTP ${statusCode} with a JSON body that is not an object`),
      statusCode,
    );
  }
  return {
    ok: true,
    json: {
      kind: "json",
      status: statusCode,
      bodyText: ensureModelField(json, bodyText, deployment),
      deployment,
      api: context.api,
    },
    status: statusCode,
    effects: headerEffects,
    usage: readUsage(json),
    headersMs,
  };
}

function failed(lesson: Lesson, status?: number, verdict?: Verdict, headersMs?: number): AttemptResult {
  return {
    ok: false,
    lesson,
    status,
    ...(verdict === undefined ? {} : { verdict }),
    ...(headersMs === undefined ? {} : { headersMs }),
  };
}

function networkFailure(error: unknown, context: AttemptContext): AttemptResult {
  if (context.request.signal.aborted)
    return failed({ outcome: "client_aborted", reason: "client disconnected", effects: [] });
  const failure = classifyNetworkError(error);
  if (failure.kind === "timeout" || context.deadline.aborted) {
    const reason = failure.kind === "timeout" ? failure.reason : "the request's total time ran out";
    return failed(failureLesson("timeout", reason));
  }
  return failed(failureLesson("network_error", failure.reason));
}

function once(action: () => void): () => void {
  let isDone = false;
  return () => {
    if (isDone) return;
    isDone = true;
    action();
  };
}

function clientAskedForUsage(body: Readonly<Record<string, unknown>>): boolean {
  const options = body.stream_options;
  return (
    options !== null && typeof options === "object" && (options as { include_usage?: unknown }).include_usage === true
  );
}

/** Chat's `prompt_tokens` / `completion_tokens`, or the Responses API's `input_tokens` / `output_tokens`. */
function readUsage(json: unknown): TokenUsage {
  const usage = (json as { usage?: Record<string, unknown> | null } | null)?.usage;
  const count = (value: unknown): number | undefined => (typeof value === "number" ? value : undefined);
  return {
    promptTokens: count(usage?.prompt_tokens) ?? count(usage?.input_tokens) ?? 0,
    completionTokens: count(usage?.completion_tokens) ?? count(usage?.output_tokens) ?? 0,
  };
}

function withNative(native: NativeCall | undefined): Pick<AttemptContext, "native" | "api"> {
  return { native, api: native?.api ?? "chat" };
}

/** The native call for this candidate, if the request has one and the candidate's provider speaks it. */
function nativeCallFor(request: ForwardRequest, deployment: Deployment): NativeCall | undefined {
  const native = request.native;
  if (native === undefined) return undefined;
  return native.api === "responses" && deployment.provider.settings.responsesApi === "native" ? native : undefined;
}

/** The response's `model` names the model that answered; fill it in when the upstream left it out. */
function ensureModelField(json: unknown, bodyText: string, deployment: Deployment): string {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return bodyText;
  const model = (json as { model?: unknown }).model;
  if (typeof model === "string" && model !== "") return bodyText;
  return JSON.stringify({ ...(json as Record<string, unknown>), model: deployment.model.id });
}
