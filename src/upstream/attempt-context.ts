// What every upstream attempt shares (attempt.ts for streams, json-attempt.ts for JSON answers): the result an
// attempt reports, its context, the `timeout_ms` timer, and the failures before or instead of a usable answer.

import type { Dispatcher } from "undici";
import type { Clock } from "../clock.ts";
import type { UpstreamLimits } from "../config/types.ts";
import { abortReasonText } from "../errors/gateway-error.ts";
import { isRecord } from "../is-record.ts";
import { reportedAudioSeconds } from "../limits/audio-duration.ts";
import type { HeaderMap } from "../limits/header-map.ts";
import type { ReleaseSlot } from "../limits/in-flight-gate.ts";
import type { Deployment } from "../providers/catalog.ts";
import { type MessageOrdering, orderMessages } from "../providers/message-order.ts";
import { requestTimers } from "../request-timers.ts";
import type { OpenedStream } from "../streaming/opened-stream.ts";
import type { OpenedAudio } from "../streaming/relay-audio.ts";
import type { TokenUsage } from "../streaming/relay-types.ts";
import type { Verdict } from "./classify-response.ts";
import { classifyResponse } from "./classify-response.ts";
import type { Effect } from "./effects.ts";
import { embeddingsRefusal } from "./embeddings-answer.ts";
import type { CalibratingPrompt, ForwardRequest, JsonResult, NativeCall, UpstreamApi } from "./forward-types.ts";
import { failureLesson, type Lesson, lessonFromVerdict } from "./lessons.ts";
import type { DeadlineFlag } from "./open-stream.ts";
import { classifyNetworkError } from "./upstream-request.ts";

export type AttemptResult =
  | {
      readonly ok: true;
      readonly json?: JsonResult;
      readonly stream?: { readonly opened: OpenedStream; readonly isUsageInjected: boolean; readonly api: UpstreamApi };
      /** Speech's audio, committed to after its first bytes and relayed as it comes (audio-attempt.ts). */
      readonly audio?: OpenedAudio;
      readonly status: number;
      readonly effects: readonly Effect[];
      readonly usage?: TokenUsage;
      /** A transcription's seconds of audio as its JSON answer said them (json-attempt.ts audioSecondsOf). */
      readonly audioSeconds?: number;
      readonly headersMs: number;
      readonly firstTokenMs?: number;
    }
  | {
      readonly ok: false;
      readonly lesson: Lesson;
      readonly status: number | undefined;
      readonly verdict?: Verdict;
      readonly headersMs?: number;
      /**
       * Tokens the attempt's earlier calls spent before one failed (a Llama Guard moderation's answered inputs): the
       * provider billed them, so the budgets and stats count them.
       */
      readonly usage?: TokenUsage;
      /**
       * Of the calls the attempt's reservation counts (a Llama Guard moderation's one per input), those it never sent:
       * it failed at an earlier one, or the client went away. The budgets give their requests back.
       */
      readonly unsentCalls?: number;
      /**
       * A Llama Guard moderation's calls counted one by one (moderation-attempt.ts): the estimated prompts of those
       * whose provider took them in without reporting usage. What the attempt stays charged beside `usage`, instead of
       * the whole request's prompt (prompt-sent.ts failedAttemptTokens).
       */
      readonly unreportedPromptTokens?: number;
      /**
       * A Llama Guard call refused as longer than the model's context (moderation-attempt.ts): its own prompt and
       * output, what the refusal calibrates (prompt-sent.ts calibratingPromptOf), not the attempt's calls together.
       */
      readonly refusedCall?: CalibratingPrompt;
    };

export interface AttemptContext {
  readonly deployment: Deployment;
  readonly request: ForwardRequest;
  readonly dispatcher: Dispatcher;
  readonly clock: Clock;
  readonly limits: UpstreamLimits;
  /** Gives the provider's in-flight slot back; called once the upstream response is over (or never came). */
  readonly releaseSlot: () => void;
  /**
   * Gives a slot from `anotherSlot` back with the attempt's own, once the attempt is recorded (held-slot.ts): for a
   * call whose failure ends the attempt, which a request waiting for that slot must find recorded.
   */
  readonly holdSlot: (release: ReleaseSlot) => void;
  /** The request was handed to a connection, right before undici writes it (after a new connection's set-up). */
  readonly onSent: () => void;
  /**
   * Another in-flight slot for one more call of this attempt beside the ones it has (a Llama Guard moderation's
   * parallel calls), now or never: undefined when the provider's `max_in_flight` has none free (or others wait for
   * one), or when a budget scope is at its concurrency (AttemptServices.anotherSlot).
   */
  readonly anotherSlot: () => ReleaseSlot | undefined | Promise<ReleaseSlot | undefined>;
  readonly remainingMs: number;
  readonly controller: AbortController;
  readonly deadline: DeadlineFlag;
  /** The request in the client's own protocol, when this candidate's provider speaks it natively. */
  readonly native: NativeCall | undefined;
  /** The API this candidate is called with: `chat`, or the native call's. */
  readonly api: UpstreamApi;
  /** The role order this candidate's chat messages are sent in, and its `prefix` (providers/message-order.ts). */
  readonly messageOrdering: MessageOrdering;
  /** The prompt's estimate as this deployment counts it (its reservation's): an estimated usage starts from it. */
  readonly promptTokens: number;
  /** The attempt's span id for its `traceparent` (ForwardRequest.traceContext); undefined without a trace. */
  readonly spanId?: string | undefined;
}

/**
 * Our own timer for `timeout_ms`: undici's headersTimeout uses coarse shared timers (~1 s resolution), which would
 * make a 300 ms timeout fire after a second. undici's stays as a backstop (`headersTimeoutMs + 1_000` above).
 */
export function startHeadersTimer(
  context: AttemptContext,
  headersTimeoutMs: number,
): { isLate: boolean; stop(): void } {
  const timer = {
    isLate: false,
    stop: () => handle.cancel(),
  };
  const handle = requestTimers.after(headersTimeoutMs, () => {
    timer.isLate = true;
    context.controller.abort();
  });
  return timer;
}

/** A failure before any usable answer: our `timeout_ms`, or what the network or the client did. */
export function sendFailure(
  error: unknown,
  context: AttemptContext,
  headersTimer: { readonly isLate: boolean },
  headersTimeoutMs: number,
): AttemptResult {
  if (headersTimer.isLate && !context.request.signal.aborted) {
    // Capped by the time left (attempt.ts), the headers' timer ends with the request's deadline, due at the same
    // moment: named by the deadline, whichever of the two timers ran first.
    const isDeadline = context.deadline.aborted || headersTimeoutMs >= context.remainingMs;
    return failed(
      failureLesson(
        "timeout",
        isDeadline
          ? "the request's total time ran out"
          : `no response headers within timeout_ms (${headersTimeoutMs} ms)`,
      ),
    );
  }
  return networkFailure(error, context);
}

export function isRedirect(statusCode: number): boolean {
  return statusCode >= 300 && statusCode < 400;
}

export function isSuccess(statusCode: number): boolean {
  return statusCode >= 200 && statusCode < 300;
}

/**
 * undici does not follow redirects, and the gateway must not: a redirect (or a 304 to a POST) is not an answer
 * the client asked for, and relaying it would make it look like the gateway's own.
 */
export function redirectFailure(statusCode: number, headersMs: number): AttemptResult {
  return failed(
    failureLesson("bad_response", `HTTP ${statusCode}: the upstream answered with a redirect`),
    statusCode,
    undefined,
    headersMs,
  );
}

export function errorStatusFailure(
  context: AttemptContext,
  statusCode: number,
  headers: HeaderMap,
  bodyText: string,
  headersMs: number,
): AttemptResult {
  const { clock } = context;
  const sent = sentOf(context);
  const { endpointPath, body } = context.request;
  const verdict = embeddingsRefusal(
    classifyResponse(statusCode, headers, bodyText, clock.now(), sent.body),
    endpointPath,
    body.input,
  );
  const lesson = lessonFromVerdict(
    verdict,
    context.deployment.provider.settings,
    clock.now(),
    { headers, bodyText },
    context.request.features,
    // A native call went to another path (`/responses`) than the one the plan is made for: its route refusal is
    // recorded but teaches nothing about the planned endpoint.
    context.native === undefined ? context.request.endpointPath : undefined,
    sent,
  );
  return failed(lesson, statusCode, verdict, headersMs);
}

/**
 * The request an attempt sent, for what its refusal may teach (lessons.ts): the client's body, and whether a message
 * it sent carried `prefix` (the candidate's ordering marked a trailing assistant, or the client wrote one itself).
 * Read from the messages as ordered, not from the ordering alone: a `mark` host sent a request without a trailing
 * assistant no `prefix`, and a refusal of it naming the word (quoting the prompt) is about something else.
 */
function sentOf(context: AttemptContext): {
  readonly body: unknown;
  readonly hasPrefix: boolean;
  readonly hasReasoning: boolean;
} {
  const body = context.native?.body ?? context.request.body;
  const messages = context.native === undefined ? body.messages : undefined;
  const sent = Array.isArray(messages) ? orderMessages(messages, context.messageOrdering) : [];
  const hasPrefix = sent.some((message) => isRecord(message) && "prefix" in message);
  const hasReasoning = sent.some((message) => isRecord(message) && "reasoning_content" in message);
  return { body, hasPrefix, hasReasoning };
}

export function failed(lesson: Lesson, status?: number, verdict?: Verdict, headersMs?: number): AttemptResult {
  return {
    ok: false,
    lesson,
    status,
    ...(verdict === undefined ? {} : { verdict }),
    ...(headersMs === undefined ? {} : { headersMs }),
  };
}

export function networkFailure(error: unknown, context: AttemptContext): AttemptResult {
  if (context.request.signal.aborted)
    return failed({ outcome: "client_aborted", reason: abortReasonText(context.request.signal), effects: [] });
  const failure = classifyNetworkError(error);
  if (failure.kind === "timeout" || context.deadline.aborted) {
    const reason = failure.kind === "timeout" ? failure.reason : "the request's total time ran out";
    return failed(failureLesson("timeout", reason));
  }
  return failed(failureLesson("network_error", failure.reason));
}

/**
 * A transcription's answer with the seconds of audio it says it heard (a `verbose_json` answer's `duration`): its
 * `ash`/`asd` budgets count those instead of the upload's estimate (pipeline/recorder.ts).
 */
export function withReportedSeconds(result: AttemptResult, json: unknown, context: AttemptContext): AttemptResult {
  if (!result.ok) return result;
  const seconds = reportedAudioSeconds(json, context.request.audioMostSeconds);
  return seconds === undefined ? result : { ...result, audioSeconds: seconds };
}
