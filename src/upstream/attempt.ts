// One upstream attempt: send, wait for headers (bounded by `timeout_ms`), classify the answer, and for a stream
// wait for its first content (open-stream.ts); a JSON answer is read whole by json-attempt.ts. A stream and relayed
// speech share their send and status handling (responded-attempt.ts). It reports what happened and what it taught;
// it changes no state.
import type { Dispatcher } from "undici";
import type { Clock } from "../clock.ts";
import type { UpstreamLimits } from "../config/types.ts";
import { abortReasonText } from "../errors/gateway-error.ts";
import type { HeaderMap } from "../limits/header-map.ts";
import type { ReleaseSlot } from "../limits/in-flight-gate.ts";
import { sentRulesOf } from "../providers/body-rules.ts";
import type { Deployment } from "../providers/catalog.ts";
import {
  changesAnything,
  deploymentMessageOrdering,
  type MessageChange,
  type MessageOrdering,
  orderMessagesWithChanges,
} from "../providers/message-order.ts";
import { isGeminiDeployment, readsReasoningDetails } from "../providers/thought-signatures.ts";
import { requestTimers } from "../request-timers.ts";
import { STREAM_FEATURE } from "../router/request-features.ts";
import { responsesEventInspector } from "../streaming/responses-stream-check.ts";
import { inspectAudioEvent, inspectEvent } from "../streaming/stream-event.ts";
import { traceparentOf } from "../trace-context.ts";
import { type AttemptContext, type AttemptResult, failed } from "./attempt-context.ts";
import { audioAnswer } from "./audio-attempt.ts";
import type { ForwardRequest, NativeCall } from "./forward-types.ts";
import type { HeldSlot } from "./held-slot.ts";
import { jsonAttempt } from "./json-attempt.ts";
import { failureLesson, type Lesson, lessonFromVerdict, lessonsFromHeaders } from "./lessons.ts";
import { moderationAttempt } from "./moderation-attempt.ts";
import { openStream } from "./open-stream.ts";
import { rerankCall } from "./rerank-dialect.ts";
import { respondedAttempt } from "./responded-attempt.ts";
import { buildMultipartPayload, buildPayload, type UpstreamCall } from "./upstream-request.ts";

export type { AttemptResult } from "./attempt-context.ts";

export interface AttemptServices {
  readonly dispatcher: Dispatcher;
  readonly clock: Clock;
  readonly limits: UpstreamLimits;
  /**
   * One more in-flight slot of the deployment's provider for a call of an attempt that makes several at once (a Llama
   * Guard moderation), without waiting: undefined when none is free, or when a budget scope of the deployment is at
   * its concurrency (configured or learned: the attempt's reservation is one request in flight, each such call one
   * more). A promise where a shared ledger asks Redis (its fleet-wide concurrency leases). Default: none, every
   * attempt makes one call at a time.
   */
  anotherSlot?(deployment: Deployment, signal: AbortSignal): ReleaseSlot | undefined | Promise<ReleaseSlot | undefined>;
  /**
   * The deployment's learned refusal of one of `features`, if one holds now (limits/refused-features.ts): how a
   * learned role order is read (providers/message-order.ts `learnedOrderOf`). Default: none learned.
   */
  refusalOf?(deployment: Deployment, features: readonly string[]): { readonly feature: string } | undefined;
}

/**
 * `slot.release` frees the provider's in-flight slot (`max_in_flight`) that the caller took for this attempt:
 * it is called when the upstream response body closes (read to its end, or aborted), which for a stream is when
 * the relay is done with it, or at once when no response came. `slot.alongside` gives another slot of the attempt
 * back with it (held-slot.ts).
 */
export async function attemptOnce(
  deployment: Deployment,
  request: ForwardRequest,
  services: AttemptServices,
  remainingMs: number,
  slot: Pick<HeldSlot, "release" | "alongside"> = FREE_SLOT,
  onSent: () => void = () => {},
  /** How its messages are sent (the caller's, to compare with what the attempt then teaches). Default: as now. */
  messageOrdering: MessageOrdering = deploymentMessageOrdering(deployment, services),
  /** The prompt's estimate as the deployment counts it (failover.ts: its reservation's). Default: the request's. */
  promptTokens: number = request.promptTokens,
  /** The attempt's span id, sent in its `traceparent` when the request has a trace (ForwardRequest.traceContext). */
  spanId: string | undefined = undefined,
): Promise<AttemptResult> {
  const controller = new AbortController();
  const deadline = { aborted: false };
  // A committed stream may outlive the request deadline (it has its own duration cap), so for streams the
  // deadline bounds only the phases before the first token, through headersTimeout and the first-token timer.
  // The attempt's signal is linked to the client and the deadline by hand and unlinked when the attempt ends.
  // AbortSignal.timeout + AbortSignal.any cost more: the timeout's timer outlives the attempt by `remainingMs`
  // (120 s by default), so under load every recent request stays in memory, and AbortSignal.any is costly per
  // call (bench/README.md: by hand, +20% JSON req/s per core and 400 MB less peak memory at 10k req/s).
  const deadlineTimer = requestTimers.after(remainingMs, () => {
    deadline.aborted = true;
    if (!request.isStream)
      controller.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError"));
  });
  const onClientAbort = (): void => controller.abort(request.signal.reason);
  if (request.signal.aborted) onClientAbort();
  else request.signal.addEventListener("abort", onClientAbort, { once: true });
  const native = nativeCallFor(request, deployment);
  try {
    // Most attempts have nothing to look up: no await for them (one promise fewer on the hot path).
    const recalling = keptToolCallExtras(request, deployment, native);
    const sent = recalling === undefined ? request : await recalling;
    return await attemptWithSignals({
      deployment,
      request: sent,
      dispatcher: services.dispatcher,
      clock: services.clock,
      limits: services.limits,
      releaseSlot: once(slot.release),
      holdSlot: slot.alongside,
      onSent,
      anotherSlot: () => services.anotherSlot?.(deployment, request.signal),
      remainingMs,
      controller,
      deadline,
      native,
      api: native?.api ?? "chat",
      messageOrdering,
      promptTokens,
      spanId,
    });
  } finally {
    deadlineTimer.cancel();
    request.signal.removeEventListener("abort", onClientAbort);
  }
}

/**
 * A chat call's tool-call `extra_content` goes to Gemini deployments, with Google's fallback signature where a turn
 * has none (providers/thought-signatures.ts). A Gemini model id on another host (a proxy in front of Google: LiteLLM,
 * Cloudflare AI Gateway; OpenRouter) gets the history as it is (undefined): it may be Gemini underneath, which refuses
 * a turn without the signature the client sent, while a dummy signature there would be a guess. Every other
 * deployment gets none.
 */
function toolCallExtrasFor(deployment: Deployment, endpointPath: string): "gemini" | "drop" | undefined {
  if (endpointPath !== "/chat/completions") return undefined;
  const settings = deployment.provider.settings;
  if (isGeminiDeployment(settings.presetOrigin?.preset, settings.baseUrl, deployment.model.id)) return "gemini";
  return /gemini/i.test(deployment.model.id) ? undefined : "drop";
}

/** Which of the doors' kept fields the deployment reads (none: undefined). */
function keptFamilyOf(deployment: Deployment, endpointPath: string): "gemini" | "reasoning_details" | undefined {
  if (endpointPath !== "/chat/completions") return undefined;
  const settings = deployment.provider.settings;
  if (readsReasoningDetails(settings.presetOrigin?.preset, settings.baseUrl)) return "reasoning_details";
  return toolCallExtrasFor(deployment, endpointPath) === "drop" ? undefined : "gemini";
}

/**
 * The request with what the doors kept for its history when the candidate reads it (ForwardRequest
 * .recallToolCallExtras): an OpenRouter or Vercel AI Gateway deployment's `reasoning_details` (OpenRouter carries
 * Gemini's signatures there too); else the thought signatures, for a Gemini deployment and a Gemini model id behind a proxy too
 * (toolCallExtrasFor's undefined on the chat path): the proxy gets the history as it is and Gemini underneath refuses
 * the turn without the signature, so a next turn on another replica needs the shared copy there as much. The look-up
 * (an MGET with Redis) is made for the attempts that send the field only. A native call sends the client's own body:
 * nothing to add.
 */
function keptToolCallExtras(
  request: ForwardRequest,
  deployment: Deployment,
  native: NativeCall | undefined,
): Promise<ForwardRequest> | undefined {
  const recall = request.recallToolCallExtras;
  const messages = request.body.messages;
  if (recall === undefined || native !== undefined || !Array.isArray(messages)) return undefined;
  const family = keptFamilyOf(deployment, request.endpointPath);
  if (family === undefined) return undefined;
  return recall(messages, family).then((recalled) =>
    recalled === messages ? request : { ...request, body: { ...request.body, messages: recalled } },
  );
}

function traceHeadersOf(
  request: ForwardRequest,
  spanId: string | undefined,
): { traceparent?: string; tracestate?: string } {
  const trace = request.traceContext;
  if (trace === undefined || spanId === undefined) return {};
  return {
    traceparent: traceparentOf(trace, spanId),
    ...(trace.traceState === undefined ? {} : { tracestate: trace.traceState }),
  };
}

/** Not async itself: it only picks the JSON or the stream path (one promise fewer per attempt). */
function attemptWithSignals(context: AttemptContext): Promise<AttemptResult> {
  const { deployment, request, remainingMs } = context;
  const settings = deployment.provider.settings;
  const headersTimeoutMs = Math.min(settings.timeoutMs, remainingMs);
  const { native } = context;
  // A native call is the client's own protocol, which has no `stream_options.include_usage` to add.
  // Nor has an audio stream (speech's `stream_format: sse`, a streamed transcription): its `done` event has the usage.
  const isUsageInjected =
    native === undefined &&
    request.isStream &&
    settings.injectStreamUsage &&
    !isAudioPath(request.endpointPath) &&
    !clientAskedForUsage(request.body);
  const multipart =
    request.isMultipart === true
      ? buildMultipartPayload(request.body, { upstreamModelId: deployment.model.id, bodyRules: deployment.body })
      : undefined;
  const rerank = request.isRerank === true ? rerankCall(request.body, deployment) : undefined;
  const call: UpstreamCall = {
    deployment,
    endpointPath: native?.endpointPath ?? rerank?.endpointPath ?? request.endpointPath,
    payload:
      multipart?.payload ??
      rerank?.payload ??
      // A moderation attempt builds its own calls (moderation-attempt.ts).
      (request.isModeration === true ? "" : undefined) ??
      buildPayload(native?.body ?? request.body, {
        upstreamModelId: deployment.model.id,
        shouldAskForUsage: isUsageInjected,
        supportsReasoning: deployment.capabilities.reasoning === true,
        bodyRules: sentRulesOf(deployment, request.isLegacyCompletion),
        api: context.api,
        spentOutputTokens: request.spentOutputTokens,
        messageOrder: context.messageOrdering,
        toolCallExtras: toolCallExtrasFor(deployment, request.endpointPath),
      }),
    contentType: multipart?.payload.contentType,
    isBinaryAnswer: request.isBinaryAnswer,
    isTextAsked: multipart?.isTextAsked,
    isStream: request.isStream,
    headersTimeoutMs: headersTimeoutMs + 1_000,
    // Streams use their own first-token and idle timers (exact, and distinguishable in reasons); 0 disables undici's.
    // A JSON body gets the provider's idle bound (undici's bodyTimeout is restarted by every chunk): an upstream
    // that sends headers and then nothing once held the call for the whole total_timeout_ms, with no failover.
    // Relayed audio has its own idle timer too, which does not count the time a slow client takes (backpressure).
    bodyTimeoutMs:
      request.isStream || isRelayedAudio(request)
        ? 0
        : Math.max(1, Math.min(settings.streamIdleTimeoutMs, remainingMs)),
    signal: context.controller.signal,
    ...traceHeadersOf(request, context.spanId),
  };
  if (request.isModeration === true) return moderationAttempt(context, call, headersTimeoutMs);
  if (isRelayedAudio(request)) return respondedAttempt(context, call, headersTimeoutMs, audioAnswer, undefined);
  if (!request.isStream) return jsonAttempt(context, call, headersTimeoutMs);
  return respondedAttempt(context, call, headersTimeoutMs, streamAnswer, isUsageInjected);
}

/** A stream's 2xx answer: wait for its first content (open-stream.ts) before it is handed to the relay. */
async function streamAnswer(
  context: AttemptContext,
  response: Dispatcher.ResponseData,
  _call: UpstreamCall,
  sentAtMs: number,
  headersMs: number,
  isUsageInjected: boolean,
): Promise<AttemptResult> {
  const { deployment, request, clock, remainingMs, controller } = context;
  const settings = deployment.provider.settings;
  const headerEffects = lessonsFromHeaders(response.headers as HeaderMap, settings, sentAtMs);
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
    inspect: isAudioPath(request.endpointPath)
      ? inspectAudioEvent
      : context.api === "chat"
        ? inspectEvent
        : responsesEventInspector(),
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
    return failed({ outcome: "client_aborted", reason: abortReasonText(request.signal), effects: [] }, 200);
  }
  if (opened.verdict !== undefined) {
    return failed(
      lessonFromVerdict(opened.verdict, settings, clock.now()),
      response.statusCode,
      opened.verdict,
      headersMs,
    );
  }
  if (opened.failure === "not_a_stream" && isAudioPath(request.endpointPath)) {
    return failed(notAnAudioStream(request, opened.reason), response.statusCode, undefined, headersMs);
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

/** `/audio/speech`, `/audio/transcriptions`: their streams are `speech.audio.*` and `transcript.text.*` events. */
function isAudioPath(endpointPath: string): boolean {
  return endpointPath.startsWith("/audio/");
}

/**
 * An audio model that answered a stream request with its whole answer (audio, or a transcription's JSON): it does not
 * stream, which is no fault of the upstream (nothing blamed), and is learned as a refusal of the streaming parameter
 * (`stream_format` for speech, `stream` for a transcription), so it is tried after the others next time. Not converted
 * into events: the next candidate may stream, and a client that asked for events is never handed anything else.
 */
function notAnAudioStream(request: ForwardRequest, reason: string): Lesson {
  const feature = request.endpointPath === "/audio/speech" ? "stream_format" : STREAM_FEATURE;
  const why = `${reason}: the model does not stream`;
  const isAsked = request.features?.includes(feature) === true;
  return {
    outcome: "unsupported",
    reason: why,
    effects: isAsked ? [{ kind: "refused_feature", feature, reason: why }] : [],
  };
}

/** Text to speech answered with the audio's bytes (not `stream_format: sse`): relayed as they come. */
function isRelayedAudio(request: ForwardRequest): boolean {
  return request.isBinaryAnswer === true && !request.isStream;
}

/** No slot taken: nothing to give back. */
const FREE_SLOT: Pick<HeldSlot, "release" | "alongside"> = { release: () => {}, alongside: (other) => other() };

function once(action: () => void): () => void {
  let isDone = false;
  return () => {
    if (isDone) return;
    isDone = true;
    action();
  };
}

/** The body asks for a stream's usage chunk itself (`stream_options.include_usage: true`). */
export function clientAskedForUsage(body: Readonly<Record<string, unknown>>): boolean {
  const options = body.stream_options;
  return (
    options !== null && typeof options === "object" && (options as { include_usage?: unknown }).include_usage === true
  );
}

/**
 * What the candidate's role order changes in the chat messages an attempt sends (the record's `messageChanges`): the
 * rewrite buildPayload makes, found the same way. Empty for a body that has no chat messages (a native Responses
 * call, audio, a rerank, a moderation's own calls) or that needed no change. Computed apart from the payload, and
 * only for an order that may change something, so that the usual request (`any`) pays nothing for it.
 */
export function messageChangesOf(
  request: ForwardRequest,
  deployment: Deployment,
  ordering: MessageOrdering,
): readonly MessageChange[] {
  if (!changesAnything(ordering)) return [];
  if (request.isMultipart === true || request.isRerank === true || request.isModeration === true) return [];
  if (nativeCallFor(request, deployment) !== undefined) return [];
  const messages = request.body.messages;
  return Array.isArray(messages) ? orderMessagesWithChanges(messages, ordering).changes : [];
}

/** The native call for this candidate, if the request has one and the candidate's provider speaks it. */
export function nativeCallFor(request: ForwardRequest, deployment: Deployment): NativeCall | undefined {
  const native = request.native;
  if (native === undefined) return undefined;
  return native.api === "responses" && deployment.provider.settings.responsesApi === "native" ? native : undefined;
}
