// Relays an opened upstream stream to the client as batches of Chat Completions chunks, and continues it on
// another upstream when it breaks after it started (docs/streaming.md, "Continuation"): a broken segment is
// followed by one from a `ContinuationSource`, spliced in so that the client sees one answer.
//
// The consumer (a protocol adapter) pulls with `next()` and writes what it gets; it must drive the generator to
// its end (the client leaving aborts `signal`, which ends it promptly). The return value says how the stream
// ended; the adapter then writes its protocol's end marker or in-band error (`streamError`).
import { type GatewayError, UpstreamTimeoutError } from "../errors/gateway-error.ts";
import { inBandUpstreamError } from "../errors/in-band-error.ts";
import { type StreamOutcome, traitsOf } from "../errors/outcomes.ts";
import type { EchoedPrompt } from "./echoed-prompt.ts";
import { estimatedUsageChunk, OutputTokenCount } from "./estimated-usage.ts";
import { OpeningWindow } from "./opening-window.ts";
import { relaySegment } from "./relay-segment.ts";
import { RelayState } from "./relay-state.ts";
import type {
  ContinuationRecord,
  ContinuationSegment,
  ContinuationSource,
  RelayResult,
  RelaySegment,
  SegmentEnd,
  StreamBatch,
  StreamChunk,
  TokenUsage,
} from "./relay-types.ts";
import { unrelayedOutput } from "./segment-progress.ts";
import { UsageMerge } from "./usage-merge.ts";

export interface RelayOptions {
  readonly maxDurationMs: number;
  /** Malformed events tolerated (skipped and reported) before the stream counts as broken. */
  readonly maxMalformedEvents: number;
  /** `upstream_limits.max_retained_stream_chars`: delivered text kept for continuation; past it, none is. */
  readonly maxRetainedChars: number;
  /** Strip usage-only chunks of the first segment (the gateway asked for usage, the client did not). */
  readonly shouldStripUsage: boolean;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
  /** Where continuations come from; absent (tool calls, n > 1, not chat) means a broken stream ends in an error. */
  readonly continuation?: ContinuationSource;
  /**
   * Prompt tokens of the original request (the estimate, calibrated for the first deployment), for the combined usage
   * of a prefill-continued stream whose first upstream never reported them.
   */
  readonly promptTokens?: number;
  /** Counts completion tokens of delivered text whose usage the provider never reported (a cut segment). */
  countTokens?(text: string): number;
  /**
   * A door that answers an upstream's silence with an estimate: `promptTokens` is the prompt's estimate. A stream that
   * ends well without any upstream's usage is then counted by the estimate (counted with `countTokens`): the result's
   * `usage`, and the first segment's SegmentEnd.estimatedUsage when it ended the answer. `isSentToClient`: the client
   * asked for usage (`stream_options.include_usage`), so the estimate also goes to it, as one final usage chunk marked
   * `x_gateway.usage_estimated` (estimated-usage.ts); a client that did not ask is told nothing it did not ask for.
   */
  readonly usageEstimate?: { readonly promptTokens: number; readonly isSentToClient: boolean } | undefined;
  /**
   * Whether the client's protocol adapter ended the answer itself (pipeline-types.ts StreamAnswer.endAnswer: a stop
   * sequence the Messages door matched): a segment that fails after that ends as a success, as one that breaks after
   * every choice finished does (relay-segment.ts).
   */
  isAnswerEnded?(): boolean;
  /** A legacy completion's echoed prompt, which its output counts leave out (echoed-prompt.ts). */
  readonly echoedPrompt?: EchoedPrompt | undefined;
  /** About to wait for the upstream, its batches taken: the writer sends them now (RequestContext.flushWrites). */
  readonly onUpstreamWait?: (() => void) | undefined;
  /** Replaces secrets in upstream-derived text (error events, malformed samples) before it is shown or logged. */
  redact(text: string): string;
  onMalformedEvent?(data: string): void;
  onContinuation?(record: ContinuationRecord): void;
}

export async function* relayStream(
  first: RelaySegment,
  options: RelayOptions,
): AsyncGenerator<StreamBatch, RelayResult, void> {
  const startedAtMs = Date.now();
  const state = new RelayState({
    maxMalformedEvents: options.maxMalformedEvents,
    isContinuable: options.continuation !== undefined,
    maxRetainedChars: options.maxRetainedChars,
    usage: new UsageMerge(options.promptTokens, options.countTokens),
    output:
      options.usageEstimate === undefined || options.countTokens === undefined
        ? undefined
        : new OutputTokenCount(options.countTokens),
    redact: options.redact,
    ...(options.onMalformedEvent === undefined ? {} : { onMalformedEvent: options.onMalformedEvent }),
  });
  let segment: RelaySegment = first;
  let continuation: ContinuationSegment | undefined;
  /** The continuation streaming now, until it is settled: the relay may be closed while it streams. */
  let unsettled: ContinuationSegment | undefined;
  /**
   * The continuation that ended last, settled once it is known whether another one continues it: as for the first
   * segment, what its budgets are charged depends on it (pipeline/segment-charge.ts). Settled at once, a continuation
   * that broke and was continued kept its whole reservation (its `max_tokens` included) as if it had ended the answer.
   */
  let ended: { readonly segment: ContinuationSegment; readonly end: SegmentEnd } | undefined;
  let firstEnd: SegmentEnd | undefined;
  let firstFailure: SegmentEnd | undefined;
  /** The stream's time ran out (while a continuation was being opened or streamed): this, not the first failure, is its end. */
  let timedOut: SegmentEnd | undefined;
  let end: SegmentEnd = { outcome: "stream_cut", reason: "the stream never started", usage: undefined, text: "" };
  /** The usage the client was told by the gateway's estimate, when no upstream reported any. */
  let estimatedUsage: TokenUsage | undefined;
  try {
    for (;;) {
      const remainingMs = options.maxDurationMs - (Date.now() - startedAtMs);
      end = yield* relaySegment(segment, continuation, state, {
        remainingMs,
        maxDurationMs: options.maxDurationMs,
        shouldStripUsage: options.shouldStripUsage,
        signal: options.signal,
        countTokens: options.countTokens,
        isAnswerEnded: options.isAnswerEnded,
        echoedPrompt: options.echoedPrompt,
        onUpstreamWait: options.onUpstreamWait,
      });
      // A segment is settled once it is known whether another upstream continues it (the first one last), but its slot
      // is freed now (`ended`): the deployment may be asked to continue it itself.
      if (continuation === undefined) {
        firstEnd = end;
        first.ended?.(end);
      } else {
        continuation.ended?.(end);
        ended = { segment: continuation, end };
        unsettled = undefined;
      }
      const reported = continuation === undefined ? end.usage : state.combinedUsage;
      if (end.outcome === "success" && !options.signal.aborted) {
        const estimate = answerEstimate(state, options, { reported, end, continuation }, true);
        if (estimate !== undefined) {
          estimatedUsage = estimate.usage;
          // The first segment ended the answer unreported: its attempt, budgets and /stats count this same estimate
          // (pipeline/segment-usage.ts). A continuation that ended it is estimated by its own share.
          if (continuation === undefined) firstEnd = { ...end, estimatedUsage: estimate.usage };
          if (estimate.chunk !== undefined) yield [estimate.chunk];
        }
        const extended = extendedUsageChunk(state, options, end, continuation, true);
        if (extended !== undefined) yield [extended];
      } else if (end.outcome === "client_aborted" && options.isAnswerEnded?.() === true) {
        // The client left while the door waited for the usage of the answer it had ended (a stop sequence it matched,
        // after-answer.ts): it had its whole answer, recorded by the estimate (sent to nobody) as a success's is. Until
        // 2026-12-07 the record counted 0 tokens, while its attempt, /stats and the budgets counted the estimate.
        estimatedUsage = answerEstimate(state, options, { reported, end, continuation }, false)?.usage;
        extendedUsageChunk(state, options, end, continuation, false);
      }
      if (end.outcome === "success" || end.outcome === "client_aborted" || options.signal.aborted) break;
      // The cap is the whole stream's, not a failure of the rescue: a continuation cut off by it ends the stream with
      // the cap's upstream_timeout, not with the earlier cut (which the client would take for a broken connection).
      if (end.outcome === "stream_too_long") timedOut ??= end;
      firstFailure ??= end;
      const source = options.continuation;
      if (!state.isContinuable || !traitsOf(end.outcome).mayContinueStream || source === undefined) break;
      state.usage.noteSegment(continuation === undefined, end.usage, end.text, end.reasoning);
      const deliveredText = state.deliveredText();
      const opening = new OpeningWindow(options.signal, options.maxDurationMs - (Date.now() - startedAtMs));
      let next: ContinuationSegment | undefined;
      try {
        if (!opening.signal.aborted) {
          next = await source.next({ outcome: end.outcome, reason: end.reason, deliveredText }, opening);
        }
      } finally {
        opening.close();
      }
      if (opening.isExpired && !options.signal.aborted) {
        // Opening a continuation counts against max_stream_duration_ms like streaming does: connecting to the next
        // candidate and waiting for its first token could otherwise outlive the documented maximum.
        const reason = `the stream exceeded max_stream_duration_ms (${options.maxDurationMs} ms) while a continuation was being opened`;
        timedOut = { outcome: "stream_too_long", reason, usage: undefined, text: "" };
        if (next !== undefined) abandon(next, reason, state, options);
        break;
      }
      if (next === undefined) break;
      if (options.signal.aborted) {
        // The client left while the continuation was being opened: nobody will read it. Hang up on it and give
        // its slot back, or the upstream call streams on for nobody and the slot is never freed.
        abandon(next, "client disconnected", state, options);
        break;
      }
      const record: ContinuationRecord = {
        provider: next.provider,
        model: next.model,
        afterChars: deliveredText.length,
        reason: end.reason,
        mode: next.mode,
      };
      state.continuations.push(record);
      options.onContinuation?.(record);
      ended?.segment.finish({ ...ended.end, isContinued: true });
      ended = undefined;
      segment = next;
      continuation = next;
      unsettled = next;
    }
  } finally {
    // Closed while a continuation streamed (the consumer stopped at a yield: a write that threw, a client that took
    // nothing until max_stream_duration_ms): its upstream was hung up on by the segment, but it must still be
    // settled, or its concurrency slot and its attempt stay open. The segment's own end is lost with it: the text it
    // delivered is taken from the relay's, since its provider generated (and billed) it (pipeline/segment-usage.ts).
    unsettled?.finish({
      outcome: "client_aborted",
      reason: "the stream was closed",
      usage: undefined,
      text: deliveredSince(state, state.continuations.at(-1)?.afterChars ?? 0),
      ...state.segmentOutput,
    });
    ended?.segment.finish(ended.end);
    first.finish({
      ...(firstEnd ?? {
        outcome: "client_aborted",
        reason: "client disconnected",
        usage: undefined,
        text: deliveredSince(state, 0),
        ...state.segmentOutput,
      }),
      isContinued: state.continuations.length > 0,
    });
  }
  const isSuccess = end.outcome === "success";
  const isContinued = state.continuations.length > 0;
  const failure = timedOut ?? firstFailure;
  return {
    outcome: isSuccess || failure === undefined ? end.outcome : failure.outcome,
    isSuccess,
    reason: failure?.reason ?? end.reason,
    ...(failure?.upstreamStatus === undefined ? {} : { upstreamStatus: failure.upstreamStatus }),
    usage: estimatedUsage ?? (isContinued ? state.combinedUsage : end.usage),
    // An upstream gateway's estimate is one whether the client saw its usage chunk or the gateway stripped it (it
    // asked for usage itself): the record says what the tokens are, not what the client was shown.
    ...(estimatedUsage !== undefined || (isContinued ? state.isCombinedUsageEstimated : end.isUsageEstimated === true)
      ? { isUsageEstimated: true as const }
      : {}),
    deliveredChars: state.deliveredChars,
    ...(state.isRetainingText ? { deliveredText: state.deliveredText() } : {}),
    malformedEvents: state.malformedEvents,
    continuations: state.continuations,
    isClientGone: !isSuccess && (end.outcome === "client_aborted" || options.signal.aborted),
  };
}

/** The text delivered after the first `afterChars` characters, while the relay still keeps it (else none). */
function deliveredSince(state: RelayState, afterChars: number): string {
  return state.isRetainingText ? state.deliveredText().slice(afterChars) : "";
}

/**
 * A continuation opened when nobody would read it any more (the client left, the stream's time ran out): hung up on,
 * and settled with what its first content generated, never relayed.
 */
function abandon(next: ContinuationSegment, reason: string, state: RelayState, options: RelayOptions): void {
  next.stream.controller.abort();
  const output = unrelayedOutput(next.stream, state, options.countTokens);
  next.finish({ outcome: "client_aborted", reason, usage: undefined, text: "", hasAddedNothing: true, ...output });
}

/**
 * The usage chunk of a segment that ended the answer with output relayed after its provider's last count
 * (SegmentEnd.isUsageExtended: a running count, then text without one; or the door's stop grace ran out): that count
 * with the output since added, what the segment is charged and recorded (a continuation's merged with the segments
 * before it, the answer's usage from now on), sent last to a client that asked for usage, which was told the count
 * alone (a Messages client's `message_delta`). Before 2026-12-07 that text was charged nowhere, nor told.
 */
function extendedUsageChunk(
  state: RelayState,
  options: RelayOptions,
  end: SegmentEnd,
  continuation: ContinuationSegment | undefined,
  /** The client is still there to be sent it (else the merge alone, for the record: a client that left in the grace). */
  isClientThere: boolean,
): StreamChunk | undefined {
  if (end.isUsageExtended !== true || end.usage === undefined) return undefined;
  let usage = end.usage;
  if (continuation !== undefined) {
    // As its counts were spliced (relay-segment.ts): a restarted prefill's covers the answer, as a replay's does.
    usage = state.usage.combine(end.usage, end.isRestarted === true ? "replay" : continuation.mode);
    state.combinedUsage = usage;
  }
  if (!isClientThere || options.usageEstimate?.isSentToClient !== true) return undefined;
  const json = estimatedUsageChunk(state.lastChunk, state.streamId, usage, end.isUsageEstimated === true);
  return { data: JSON.stringify(json), json };
}

/**
 * The estimated usage of an answer whose last segment reported none: the first segment's, usageEstimate; a
 * continuation's, the segments' sum (continuedUsageEstimate).
 */
function answerEstimate(
  state: RelayState,
  options: RelayOptions,
  last: {
    readonly reported: TokenUsage | undefined;
    readonly end: SegmentEnd;
    readonly continuation: ContinuationSegment | undefined;
  },
  isClientThere: boolean,
): { readonly usage: TokenUsage; readonly chunk?: StreamChunk } | undefined {
  return last.continuation === undefined
    ? usageEstimate(state, options, last.reported, isClientThere)
    : continuedUsageEstimate(state, options, last.end, last.continuation.mode, isClientThere);
}

/**
 * A continued answer whose last segment reported no usage (none believed): the sum of its segments, each as reported or
 * counted (UsageMerge.combineCounted), sent to a client that asked for usage as the last usage chunk, marked, whatever
 * usage an earlier segment passed on (a running count, a role chunk's zeros: the whole answer's is this one). Until
 * 2026-12-07 such a passed usage stopped the estimate (RelayState.hasPassedUsage, relay-wide): the client's last usage
 * was an earlier segment's partial count, or the estimate counted only the output read while no usage had passed.
 */
function continuedUsageEstimate(
  state: RelayState,
  options: RelayOptions,
  end: SegmentEnd,
  mode: "prefill" | "replay",
  isClientThere: boolean,
): { readonly usage: TokenUsage; readonly chunk?: StreamChunk } | undefined {
  const estimate = options.usageEstimate;
  if (estimate === undefined || end.usage !== undefined) return undefined;
  const usage = state.usage.combineCounted(end, mode);
  if (!estimate.isSentToClient || !isClientThere) return { usage };
  const json = estimatedUsageChunk(state.output?.lastChunk ?? state.lastChunk, state.streamId, usage);
  return { usage, chunk: { data: JSON.stringify(json), json } };
}

/**
 * The estimated usage of a whole answer no upstream reported usage for (a continued answer included: a continuation's
 * real usage is merged instead, never sent beside an estimate), and the usage chunk it ends with when the client asked
 * for usage. `reported`: the answer's usage an upstream reported, which the client did not see because the gateway
 * asked for it itself (stripped): then there is nothing to estimate. Before 2026-12-07 an answer whose client had not
 * asked was not estimated at all, and counted 0 tokens in the record, the metrics, /stats and the dashboard.
 */
function usageEstimate(
  state: RelayState,
  options: RelayOptions,
  reported: TokenUsage | undefined,
  /** The client is still there to be sent an estimate it asked for. */
  isClientThere: boolean,
): { readonly usage: TokenUsage; readonly chunk?: StreamChunk } | undefined {
  const output = state.output;
  const estimate = options.usageEstimate;
  if (estimate === undefined || output === undefined || state.hasPassedUsage) return undefined;
  const isSent = estimate.isSentToClient && isClientThere;
  if (!isSent && reported !== undefined) return undefined;
  const usage = { promptTokens: estimate.promptTokens, completionTokens: output.tokens };
  if (!isSent) return { usage };
  const json = estimatedUsageChunk(output.lastChunk, state.streamId, usage);
  return { usage, chunk: { data: JSON.stringify(json), json } };
}

/**
 * The in-band error a client gets when its stream failed after it started; `upstreamStatus`, the status the upstream's
 * own error named, makes a rate limit or an overload one (errors/in-band-error.ts).
 */
export function streamError(outcome: StreamOutcome, reason: string, upstreamStatus?: number): GatewayError {
  const message = `The upstream stream failed after it had started: ${reason}.`;
  return outcome === "stream_stalled" || outcome === "stream_too_long"
    ? new UpstreamTimeoutError(message)
    : inBandUpstreamError(message, upstreamStatus);
}
