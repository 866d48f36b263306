// The failover executor's contract: what it is asked, what it needs from the rest of the gateway, and what it
// reports. It mutates nothing itself: admission and every attempt's end go through `FailoverServices`, which the
// pipeline's recorder implements.

import type { Dispatcher } from "undici";
import type { Clock } from "../clock.ts";
import type { MessageOrder } from "../config/message-orders.ts";
import type { RoutingSettings, UpstreamLimits } from "../config/types.ts";
import type { Outcome } from "../errors/outcomes.ts";
import type { CooldownCause } from "../limits/availability.ts";
import type { Reservation } from "../limits/budgets.ts";
import type { ReleaseSlot } from "../limits/in-flight-gate.ts";
import type { StatedContext } from "../limits/stated-context.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { MessageChange } from "../providers/message-order.ts";
import type { RoutePlan } from "../router/plan-route.ts";
import type { RequestFeature } from "../router/request-features.ts";
import type { OpenedStream } from "../streaming/opened-stream.ts";
import type { OpenedAudio } from "../streaming/relay-audio.ts";
import type { TokenUsage } from "../streaming/relay-types.ts";
import type { TraceContext } from "../trace-context.ts";
import type { Effect } from "./effects.ts";

/** The upstream API a candidate was called with: the endpoint's own (`chat`), or the client's protocol natively. */
export type UpstreamApi = "chat" | "responses";

/**
 * The same request in the client's own protocol, for candidates whose provider speaks it natively (a provider
 * with `responses_api: native`): sent to `endpointPath` with `body` (its `model` replaced, gateway-only fields
 * dropped) instead of the translated request.
 */
export interface NativeCall {
  readonly api: Exclude<UpstreamApi, "chat">;
  /** e.g. `/responses` */
  readonly endpointPath: string;
  readonly body: Readonly<Record<string, unknown>>;
}

/** A request's prompt estimate and requested output, for the calibration (limits/prompt-calibration.ts). */
export interface CalibratingPrompt {
  readonly estimate: number;
  readonly maxOutputTokens: number;
  /**
   * Set when the request held several inputs each fitted alone (an embeddings batch, a moderation's Llama Guard calls):
   * its reported prompt is theirs together, no one prompt's size (limits/learned-context.ts clearOutgrownWindow).
   */
  readonly isManyInputs?: true;
}

/** ForwardRequest.recallToolCallExtras: the history with what was kept for `family`'s deployments. */
export type RecallToolCallExtras = (
  messages: readonly unknown[],
  family: "gemini" | "reasoning_details",
) => Promise<readonly unknown[]>;

export interface ForwardRequest {
  /** e.g. `/chat/completions` */
  readonly endpointPath: string;
  readonly body: Readonly<Record<string, unknown>>;
  /** The body is sent as `multipart/form-data` (an audio request: its file is an UploadedFile in `body`). */
  readonly isMultipart?: boolean | undefined;
  /** A legacy `/v1/completions` body: sent with the deployment's completions rules (Deployment.completionsBody). */
  readonly isLegacyCompletion?: boolean | undefined;
  /** A success is answered with bytes (text to speech: the audio), kept as bytes (JsonResult.bytes), not as text. */
  readonly isBinaryAnswer?: boolean | undefined;
  /** A rerank request: sent and read in each candidate's rerank dialect (rerank-dialect.ts). */
  readonly isRerank?: boolean | undefined;
  /** A moderation request: sent and read in each candidate's way (moderation-dialect.ts). */
  readonly isModeration?: boolean | undefined;
  /** A moderation request's inputs (RouteRequest.moderationInputs): a Llama Guard candidate makes one call per input. */
  readonly moderationInputs?: number | undefined;
  /** A transcription's upload in seconds of audio (RouteRequest.audioSeconds): reserved on `ash`/`asd` budgets. */
  readonly audioSeconds?: number | undefined;
  /** The most seconds the upload's bytes can hold (AudioDuration.mostSeconds): a reported `duration` is kept to it. */
  readonly audioMostSeconds?: number | undefined;
  /** Sent instead of `endpointPath` and `body` to candidates that speak the client's protocol natively. */
  readonly native?: NativeCall | undefined;
  /**
   * Gives a chat history what the Messages and Responses doors kept for it (server/tool-call-extras-door.ts), at most
   * one look-up per request and family: `gemini`, the unsigned assistant tool calls' `extra_content` (thought
   * signatures) from a shared store; `openrouter`, the assistant messages' `reasoning_details` (from memory, else
   * the shared store). Called for a candidate of that family only (attempt.ts: `gemini` for a Gemini deployment and a Gemini model id behind a proxy): no other deployment takes the field,
   * so a request served elsewhere costs no round trip; a failover to one makes it then. Undefined: nothing to look up.
   */
  readonly recallToolCallExtras?: RecallToolCallExtras | undefined;
  readonly isStream: boolean;
  /**
   * A JSON chat answer without `usage` is counted by the gateway's estimate (pipeline/endpoints.ts estimatesUsage): its
   * body gets it, marked, and its attempt carries it (AttemptReport.isUsageEstimated).
   */
  readonly estimatesUsage?: boolean | undefined;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
  /**
   * When the request arrived (the clock's ms): `routing.total_timeout_ms` counts from then, its time in the queue
   * included. Default: when forward() starts (a continuation, which has its own bounds).
   */
  readonly receivedAtMs?: number | undefined;
  /** Estimated prompt tokens and the requested output tokens, for token budgets. */
  readonly promptTokens: number;
  readonly maxOutputTokens: number;
  /**
   * The same estimate when the prompt tokens an answer reports may calibrate it (limits/prompt-calibration.ts);
   * undefined with images, which the estimate counts at a flat rate.
   */
  readonly calibratingPromptTokens?: number | undefined;
  /** The part of `promptTokens` that is reasoning sent back (PromptFacts.reasoningTokens): not sent to a host that refused it. */
  readonly reasoningPromptTokens?: number | undefined;
  /**
   * What the request asks of a candidate (router/request-features.ts): an `unsupported` refusal naming one of them
   * is learned, a success clears what was learned of them. Absent (a continuation): nothing of the kind is learned.
   */
  readonly features?: readonly RequestFeature[] | undefined;
  /**
   * A prefill continuation's delivered output, in tokens: the output limit each candidate is sent (the client's, or
   * the one its `body:` rules set) is less by it, so that the rest may not grow past the limit (upstream-request.ts).
   */
  readonly spentOutputTokens?: number | undefined;
  /**
   * Its output limit is the gateway's choice, not the client's (upstream/affordable-retry.ts): its answer says so
   * (JsonResult.isOutputLimitChosen).
   */
  readonly isOutputLimitChosen?: true | undefined;
  /** The name the client gave its output limit (`max_output_tokens` at the Responses door), for a 413's advice. */
  readonly outputLimitField?: string | undefined;
  /** The queue gave the request back without a candidate (full, or out of time): the 429 says so (final-error.ts). */
  readonly queueRefusal?:
    | { readonly isFull: boolean; readonly waitedMs: number; readonly isTotalBound?: boolean | undefined }
    | undefined;
  /** Filled with every attempt and skip as they happen, so the caller has them even when forward() throws. */
  readonly trace: ForwardTrace;
  /**
   * The request's W3C trace (RequestContext.trace): each attempt is sent a `traceparent` with its trace id and a span
   * id of the attempt's own (AttemptReport.spanId), and its `tracestate`. Absent: no trace headers are sent.
   */
  readonly traceContext?: TraceContext | undefined;
  /**
   * Called when an attempt is admitted: its tokens and requests are counted in its deployment's budgets from then on
   * (a batch line's runner plans the next line of its model only then: pipeline/batch-line-order.ts).
   */
  readonly onReserved?: (() => void) | undefined;
}

/** One upstream attempt as it happened. Its `reason` and its effects' reasons never contain a secret (`redact`). */
export interface AttemptReport {
  readonly provider: string;
  /** Upstream model id. */
  readonly model: string;
  readonly deploymentKey: string;
  readonly status: number | undefined;
  readonly outcome: Outcome;
  readonly reason: string;
  readonly startedAtMs: number;
  /** The span id the attempt's `traceparent` carried (ForwardRequest.traceContext). */
  readonly spanId?: string;
  readonly headersMs?: number;
  readonly firstTokenMs?: number;
  readonly durationMs: number;
  /** What the answer taught (cooldowns, circuit, learned windows), for the recorder to apply. */
  readonly effects: readonly Effect[];
  /** A JSON success's reported usage; a failed attempt's, what its calls that answered spent (AttemptResult). */
  readonly usage?: TokenUsage;
  /**
   * `usage` is an estimate, not a provider's report (JsonResult.isUsageEstimated: this gateway's, no upstream reported
   * any, or an upstream gateway's): the record's attempt says so, it teaches the prompt calibration nothing, and the
   * budgets are charged it never below the reservation, as a stream without a report is (pipeline/segment-charge.ts).
   */
  readonly isUsageEstimated?: true;
  /**
   * A transcription's billed seconds as its answer told them (a `verbose_json` answer's `duration`, OpenAI's `usage`
   * of type `duration`), at least the provider's `min_billed_audio_seconds`: the audio budgets count these instead of
   * the estimate. Absent when the answer said none (`json`, `text`): the estimate stays.
   */
  readonly audioSeconds?: number;
  /** The provider refused the request as larger than a whole window (Verdict.isRequestTooLarge). */
  readonly isRequestTooLarge?: true;
  /** The output tokens the key's credits cover, when that is what refused the request (Verdict.affordableOutputTokens). */
  readonly affordableOutputTokens?: number;
  /** The prompt tokens the key's credits cover, when the prompt alone was refused (Verdict.affordablePromptTokens). */
  readonly affordablePromptTokens?: number;
  /** The window a context-length refusal stated, and the prompt it counted (limits/stated-context.ts). */
  readonly statedContext?: StatedContext;
  /**
   * The prompt part of the attempt's reservation (the calibrated estimate of the body sent; a prefill continuation's
   * with the delivered text its body carries: failover.ts promptSentOf): what a failed attempt whose provider took the
   * prompt in stays charged (pipeline/recorder.ts).
   */
  readonly reservedPromptTokens?: number;
  /** The request went out (handed to an upstream connection): a provider may have counted its prompt only then. */
  readonly isSent?: true;
  /**
   * A Llama Guard moderation's failed attempt: the prompts of its calls whose provider took them in without reporting
   * usage (AttemptResult.unreportedPromptTokens), as its deployment counts them. Its charge is `usage` plus these,
   * call by call, instead of the whole request's prompt (prompt-sent.ts failedAttemptTokens).
   */
  readonly callsPromptTokens?: number;
  /** A failed attempt's calls never sent (AttemptResult.unsentCalls): the recorder gives their requests back. */
  readonly unsentCalls?: number;
  /** The role order that changed the messages sent (providers/message-order.ts); absent when nothing changed. */
  readonly messageOrder?: MessageOrder;
  /** What that rewrite changed, in order (MessageChange); absent when nothing changed. */
  readonly messageChanges?: readonly MessageChange[];
}

/** A candidate passed over at attempt time (cooling down since the plan was made, or too small a context). */
export interface AttemptSkip {
  readonly deploymentKey: string;
  readonly reason: string;
  /** When the candidate frees up, if known (cooldown end, budget retry time). */
  readonly untilMs?: number;
  /** Skipped for a limit (budget, 429-type cooldown), not for failing (open circuit, parked key). */
  readonly isLimit?: boolean;
  /** Skipped for a full concurrency slot alone (Admission `isSlot`). */
  readonly isSlot?: true;
  /**
   * Skipped for a cooldown begun after the plan (another request's answer): its cause, as a plan skip's
   * `cooldownCause` (a `capacity` one is the overload, upstream/overload.ts).
   */
  readonly cooldownCause?: CooldownCause;
}

export interface ForwardTrace {
  readonly attempts: AttemptReport[];
  readonly skips: AttemptSkip[];
}

export interface JsonResult {
  readonly kind: "json";
  readonly status: number;
  /** The answer's text ("" when it is `bytes`). */
  readonly bodyText: string;
  readonly deployment: Deployment;
  /** What `bodyText` is: a chat answer, or the client protocol's own (a native call). */
  readonly api: UpstreamApi;
  /**
   * The answer's content type when it is not JSON: an audio request's `response_format` `text`, `srt` or `vtt`
   * (multipart-payload.ts), or speech's audio type (`audio/mpeg`), passed on to the client as the provider sent it.
   */
  readonly contentType?: string | undefined;
  /** A binary answer (speech's audio, ForwardRequest.isBinaryAnswer): its bytes, exactly as the provider sent them. */
  readonly bytes?: Buffer | undefined;
  /**
   * The prompt's estimate for the body this deployment was sent, when it is not ForwardRequest.promptTokens (its host
   * refused `reasoning_content`, which was removed): what its estimated usage and calibration start from.
   */
  readonly promptTokensSent?: number | undefined;
  /**
   * Its `usage` is an estimate: an upstream gateway's (its `x_gateway.usage_estimated`, read deliberately:
   * streaming/upstream-gateway-field.ts), or this gateway's own for an answer without a `usage` object
   * (ForwardRequest.estimatesUsage: a chat answer's body has it, marked; upstream/answer-usage.ts). The record says
   * estimated.
   */
  readonly isUsageEstimated?: boolean | undefined;
  /**
   * Part of the answer only: an embeddings batch's chunks answered before a later one failed, given because the
   * client asked for that (`x-gateway-partial: allow`, pipeline/embeddings-chunks.ts). Never kept by the answer cache.
   */
  readonly isPartial?: boolean | undefined;
  /**
   * Served under an output limit the gateway chose for the client, who set none (ForwardRequest.isOutputLimitChosen):
   * the answer may end at it, so the answer cache does not keep it as the request's.
   */
  readonly isOutputLimitChosen?: true | undefined;
}

export interface StreamResult {
  readonly kind: "stream";
  readonly stream: OpenedStream;
  readonly deployment: Deployment;
  /** What the stream's events are: chat chunks, or the client protocol's own events (a native call). */
  readonly api: UpstreamApi;
  /** Budget reservation held for the stream's whole life; the caller settles it when the stream ends. */
  readonly reservation: Reservation;
  /** The gateway added `stream_options.include_usage`; the usage chunk is not for the client. */
  readonly isUsageInjected: boolean;
  /** As JsonResult.promptTokensSent. */
  readonly promptTokensSent?: number | undefined;
  /** As JsonResult.isOutputLimitChosen. */
  readonly isOutputLimitChosen?: true | undefined;
  readonly attempt: AttemptReport;
}

/** Speech's audio, relayed as it comes (streaming/relay-audio.ts): its reservation is held until the relay ends. */
export interface AudioResult {
  readonly kind: "audio";
  readonly status: number;
  readonly audio: OpenedAudio;
  readonly deployment: Deployment;
  readonly api: UpstreamApi;
  readonly reservation: Reservation;
  readonly attempt: AttemptReport;
}

export interface ForwardOutcome {
  readonly result: JsonResult | StreamResult | AudioResult;
  readonly attempts: readonly AttemptReport[];
  readonly skips: readonly AttemptSkip[];
}

export type Admission =
  | { readonly isAdmitted: true; readonly reservation: Reservation }
  | {
      readonly isAdmitted: false;
      readonly reason: string;
      readonly untilMs?: number;
      /** Refused for a limit (budget, 429-type cooldown) rather than for failing (open circuit, parked key). */
      readonly isLimit: boolean;
      /** Refused for a full concurrency slot alone: `untilMs` is when the gateway looks again (budget-types.ts). */
      readonly isSlot?: true;
      /** Refused for a cooldown: its cause. */
      readonly cooldownCause?: CooldownCause;
    };

export interface FailoverServices {
  readonly dispatcher: Dispatcher;
  readonly clock: Clock;
  readonly routing: RoutingSettings;
  readonly limits: UpstreamLimits;
  /**
   * A slot among the provider's `max_in_flight`, waiting up to `maxWaitMs`; undefined when none freed up in time
   * (the candidate is skipped, not blamed). Synchronous when a slot is free, so that admission right after it
   * happens in the same tick (see Recorder.admit).
   */
  acquireSlot(
    deployment: Deployment,
    maxWaitMs: number,
    signal: AbortSignal,
  ): ReleaseSlot | undefined | Promise<ReleaseSlot | undefined>;
  /**
   * One more slot among the provider's `max_in_flight`, and one more request in flight for the budgets'
   * concurrency, for a parallel call of an attempt (attempt.ts AttemptServices.anotherSlot), now or never.
   */
  anotherSlot?(deployment: Deployment, signal: AbortSignal): ReleaseSlot | undefined | Promise<ReleaseSlot | undefined>;
  /** The prompt estimate for one candidate, calibrated from its provider's past reports. Default: as it is. */
  promptTokensFor?(deployment: Deployment, estimatedTokens: number): number;
  /**
   * The deployment a candidate's name points at now: a config reload while the request was failing over (or about
   * to continue a stream) may have pointed it at another upstream (a rotated key: the new one is sent, never the
   * replaced one) or removed it (undefined: skipped). Default: the candidate as planned.
   */
  servingAs?(deployment: Deployment): Deployment | undefined;
  /**
   * Whether the deployment has a refused feature (limits/refused-features.ts) that a success may end: without one,
   * a success reports no `accepted_features` effect (nothing to clear, on every success). Default: it may have.
   */
  hasRefusedFeatures?(deployment: Deployment): boolean;
  /**
   * The deployment's learned refusal of one of `features`, if one holds now (limits/refused-features.ts): how a
   * learned role order is read (providers/message-order.ts `learnedOrderOf`). Default: none learned.
   */
  refusalOf?(
    deployment: Deployment,
    features: readonly string[],
  ): { readonly feature: string; readonly reason?: string } | undefined;
  /** Right before an attempt: may this candidate be sent to now (circuit, cooldown, budgets)? Reserves if so. */
  /** `requests`: the upstream calls the attempt makes (a Llama Guard moderation's one per input), each counted. */
  /** `request`: the one forwarded (its audio seconds); services are made once per config, not per request. */
  admit(
    deployment: Deployment,
    tokens: number,
    requests: number,
    request: ForwardRequest,
  ): Admission | Promise<Admission>;
  /**
   * Every attempt's end, whatever it was. `isStreamOpen`: a stream that started and is handed to the relay
   * (its reservation stays held until the relay settles it). `prompt`: what a reported usage or a context-length
   * refusal may calibrate (ForwardRequest.calibratingPromptTokens), undefined when nothing may.
   */
  attemptEnded(
    deployment: Deployment,
    report: AttemptReport,
    reservation: Reservation,
    isStreamOpen: boolean,
    prompt: CalibratingPrompt | undefined,
  ): void;
  /**
   * The attempt's request was handed to an upstream connection (after a connection's set-up, if it needed one):
   * the budgets count it from now on (BudgetLedger.markSent).
   */
  attemptSent(reservation: Reservation): void;
  /** Time until a cooling deployment is available again (for 429 retry-after); `request`'s budgets count. */
  soonestAvailableMs(plan: RoutePlan, request: ForwardRequest): number | undefined;
  /**
   * The gateway's one redaction of upstream-derived text (pipeline/logged-secrets.ts): every configured secret, not
   * only this provider's. An upstream echoes what it was sent, and what a request carries (a body rule's value, a
   * client key quoted in a prompt) or what a proxy in between adds is no less secret than the key. Attempt reasons
   * and a rejected request's error pass through it before anyone sees them.
   */
  redact(text: string): string;
}
