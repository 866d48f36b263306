// The shapes the relay hands out and takes in: chunks for the client's protocol adapter, the result of a
// relayed stream, and the continuation contract (who supplies the next upstream after a mid-stream failure).
import type { StreamOutcome } from "../errors/outcomes.ts";
import type { EchoedPrompt } from "./echoed-prompt.ts";
import type { OpenedStream } from "./opened-stream.ts";

/** One Chat Completions chunk for the client: `data` is what goes after `data: `, `json` the same, parsed. */
export interface StreamChunk {
  readonly data: string;
  readonly json: Record<string, unknown>;
}

/**
 * A batch of chunks as the relay yields it. `bytes`: the upstream's own bytes of exactly these chunks, when they came in
 * the form the chat door writes (SseParser.bytesOf). No door writes them today: a write of them pins the upstream
 * read's buffer until the socket takes it (bench/README.md section 49). Undefined or absent for any other batch.
 */
export interface StreamBatch extends ReadonlyArray<StreamChunk> {
  readonly bytes?: Uint8Array | undefined;
}

export interface TokenUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/** One switch to another upstream after a mid-stream failure. */
export interface ContinuationRecord {
  readonly provider: string;
  readonly model: string;
  /** Characters of first-choice text the client had when the switch happened. */
  readonly afterChars: number;
  /** Why the previous segment failed. */
  readonly reason: string;
  /** "prefill": the new upstream continued from the delivered text; "replay": a fresh answer whose repeated start was dropped. */
  readonly mode: "prefill" | "replay";
}

/** How one segment (one upstream stream) ended. */
export interface SegmentEnd {
  readonly outcome: StreamOutcome;
  readonly reason: string;
  /** The usage the upstream reported for this segment, if it did. */
  readonly usage: TokenUsage | undefined;
  /** The HTTP status the upstream's in-band error named (errors/in-band-error.ts), when it ended on one that did. */
  readonly upstreamStatus?: number;
  /**
   * A success whose upstream then named a 429 in its stream (after every choice finished, or after a stop sequence the
   * door matched ended the answer): the error's description. The client's answer was whole, but the provider's rate
   * limit is learned (a cooldown).
   */
  readonly rateLimitedAfterAnswer?: string;
  /** `usage` is an upstream gateway's estimate (its `x_gateway.usage_estimated`), not a provider's report. */
  readonly isUsageEstimated?: true;
  /** First-choice text this segment delivered to the client. */
  readonly text: string;
  /**
   * First-choice text this segment's upstream generated that the client did not get from it: a replay's (or a prefill
   * continuation's that started over) repetition of the delivered text, as far as it got, and the text of the event a
   * replay diverged at. Its provider billed it: a segment without a usage report is estimated with it.
   */
  readonly droppedText?: string;
  /**
   * First-choice reasoning this segment delivered to the client (while the relay retains text): a broken segment's
   * provider generated it, and billed it, as surely as its text, so it counts in the estimates of what it cost.
   */
  readonly reasoning?: string;
  /**
   * First-choice reasoning this segment's upstream generated that the client did not get from it: a continuation's
   * reasoning before its first output (the client has the first stream's) and a replay's while it repeats the
   * delivered text. Billed as output: a segment without a usage report is estimated with it (not the client's usage,
   * which counts what it was given).
   */
  readonly droppedReasoning?: string;
  /**
   * Tokens of what this segment's upstream generated besides the first choice's text and reasoning: tool calls' names
   * and arguments, refusals, and the other choices' output (n > 1), delivered or dropped, counted by the relay with the
   * gateway's tokenizer as they stream (each piece on its own, as the estimated usage chunk counts them). Billed as
   * output: before 2026-12-06 a segment of tool calls only that broke was charged no output at all.
   */
  readonly otherOutputTokens?: number;
  /**
   * The first segment ended the answer well and no upstream reported usage: the whole answer's estimate, the relay's
   * count of what the client got (RelayOptions.usageEstimate), which the record's totals carry too. What its attempt,
   * budgets and /stats count (pipeline/segment-usage.ts), whether or not the client was sent it.
   */
  readonly estimatedUsage?: TokenUsage;
  /** Another upstream continued the answer after this segment broke (the first one, or a continuation). */
  readonly isContinued?: boolean;
  /**
   * A continuation that failed before it added anything to the client's answer: it broke or diverged before its first
   * output, or was abandoned as it opened. Settled with what it used, not its reservation, when the gateway ended it (it
   * diverged, or was abandoned); one its upstream broke keeps its reservation as its floor (pipeline/segment-charge.ts).
   */
  readonly hasAddedNothing?: true;
  /**
   * The client left while the relay waited for it to read (backpressure), not for its upstream: the upstream was not
   * being read, so what its provider generated meanwhile may have waited unread in the connection, uncounted by the
   * estimate. Such a segment keeps its reservation as its floor (pipeline/segment-charge.ts).
   */
  readonly isLeftUnread?: true;
  /**
   * `usage` is the last count its provider reported plus the output relayed after it, counted (SegmentProgress
   * settledUsage): the client was told the count alone, and is sent this one last when it asked for usage.
   */
  readonly isUsageExtended?: true;
  /** A prefill continuation that started the answer over (PrefillEchoGuard): its usage covers the whole answer. */
  readonly isRestarted?: true;
}

/** What a segment generated besides the text it delivered: the parts of its end its estimate counts. */
export type SegmentOutput = Pick<
  SegmentEnd,
  "droppedText" | "reasoning" | "droppedReasoning" | "otherOutputTokens" | "isLeftUnread"
>;

/** How relay-stream.ts runs one segment (relay-segment.ts). */
export interface SegmentOptions {
  /** What is left of `max_stream_duration_ms` for this segment. */
  readonly remainingMs: number;
  readonly maxDurationMs: number;
  /** Strip usage-only chunks (the gateway asked for usage, the client did not) — for the first segment. */
  readonly shouldStripUsage: boolean;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
  /** Counts what the segment generated besides its first choice's text and reasoning (SegmentEnd.otherOutputTokens). */
  readonly countTokens?: ((text: string) => number) | undefined;
  /** The client's answer ended in the adapter (RelayOptions.isAnswerEnded): a failure from then on is not the answer's. */
  readonly isAnswerEnded?: (() => boolean) | undefined;
  /** A legacy completion's echoed prompt (the first segment's), which is no output (echoed-prompt.ts). */
  readonly echoedPrompt?: EchoedPrompt | undefined;
  /** Before each read of the upstream that may wait, never after the segment ended (RelayOptions.onUpstreamWait). */
  readonly onUpstreamWait?: (() => void) | undefined;
}

/** One upstream stream in the relay: the first one, or one that continues a broken one. */
export interface RelaySegment {
  readonly stream: OpenedStream;
  /** The gateway asked this upstream for usage itself: its usage-only chunk is not for the client. */
  readonly isUsageInjected: boolean;
  /**
   * Called exactly once when this segment ends (budgets, stats, health, the concurrency slot), also when it never
   * got to stream because the client had left.
   */
  finish(end: SegmentEnd): void;
  /**
   * Called when this segment stops streaming, when `finish` may come later (a segment that broke is settled once it is
   * known whether another upstream continues it): its timings, its concurrency slot, which is free from then on, and
   * what its end says of its upstream (a break is learned now, not once a continuation has ended: pipeline/recorder.ts).
   */
  ended?(end: SegmentEnd): void;
}

/** A stream that continues a broken one. */
export interface ContinuationSegment extends RelaySegment {
  readonly provider: string;
  readonly model: string;
  readonly mode: "prefill" | "replay";
  /** For "replay": the text already delivered, which the fresh answer must start with; it is not sent twice. */
  readonly repeatsText: string;
}

/** What bounds the search for a continuation: the client, and what is left of `max_stream_duration_ms`. */
export interface OpeningBound {
  /** Aborted when the client leaves or the stream's time runs out: whatever is being opened is abandoned. */
  readonly signal: AbortSignal;
  readonly remainingMs: number;
}

/** Supplies continuations; `undefined` when nothing (more) can continue. */
export interface ContinuationSource {
  next(
    failure: { outcome: StreamOutcome; reason: string; deliveredText: string },
    bound: OpeningBound,
  ): Promise<ContinuationSegment | undefined>;
}

export interface RelayResult {
  /** `success`, or the original failure when continuation could not rescue the answer. */
  readonly outcome: StreamOutcome;
  readonly isSuccess: boolean;
  readonly reason: string;
  /** The status the failure's in-band upstream error named, if it named one: what the client's error is called. */
  readonly upstreamStatus?: number;
  /**
   * The whole answer's usage (combined over continuations), if known: the usage the client was told, or, when no
   * upstream reported any, the gateway's estimate (sent to the client only when it asked: RelayOptions.usageEstimate).
   */
  readonly usage: TokenUsage | undefined;
  /** `usage` is the gateway's estimate (no upstream reported any): estimated-usage.ts. */
  readonly isUsageEstimated?: true;
  /** Characters of first-choice text delivered to the client. */
  readonly deliveredChars: number;
  /** The first choice's text delivered, while it is retained (under the relay's retained-text bound). */
  readonly deliveredText?: string;
  readonly malformedEvents: number;
  /** Continuations spliced in after mid-stream failures, in order. */
  readonly continuations: readonly ContinuationRecord[];
  /** The client left before the end (also during a continuation, when `outcome` still names the original failure). */
  readonly isClientGone: boolean;
}
