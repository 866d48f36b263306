// The mutable facts of one stream segment while it is relayed (relay-segment.ts), and what it generated that the
// client did not get from it: the part of its provider's output the gateway dropped, still billed by that provider.
import { firstChunkChoice } from "../chat-choice.ts";
import { reasoningOf } from "../chat-reasoning.ts";
import { inBandErrorStatus } from "../errors/in-band-error.ts";
import type { StreamOutcome } from "../errors/outcomes.ts";
import { isRecord } from "../is-record.ts";
import { OutputTokenCount } from "./estimated-usage.ts";
import type { OpenedStream } from "./opened-stream.ts";
import type { RelayState } from "./relay-state.ts";
import type { SegmentOutput, TokenUsage } from "./relay-types.ts";
import type { SseEvent } from "./sse-parser.ts";
import type { EventInspector, StreamEventInfo } from "./stream-event.ts";
import { takeUpstreamGatewayField } from "./upstream-gateway-field.ts";

export class SegmentProgress {
  outcome: StreamOutcome | undefined;
  /** The client left while the relay waited for it to read, its upstream unread (SegmentEnd.isLeftUnread). */
  isLeftUnread = false;
  /** The relay waits for its client to read what it yielded (it is not reading its upstream meanwhile). */
  isWaitingOnClient = false;
  reason = "";
  /** The status the upstream's in-band error named (SegmentEnd.upstreamStatus). */
  upstreamStatus: number | undefined;
  /** The door ended the client's answer (after-answer.ts AnswerEndGrace): the next usage read ends the segment. */
  isPastAnswerEnd = false;
  /** An in-band 429 that ended the segment after the answer was whole (SegmentEnd.rateLimitedAfterAnswer). */
  rateLimitedAfterAnswer: string | undefined;
  usage: TokenUsage | undefined;
  /** `usage` is an upstream gateway's estimate (upstream-gateway-field.ts). */
  isUsageEstimated = false;
  /**
   * `usage` came in a usage-only chunk or once every choice had finished: the provider's last report. Else it is a
   * running count on a content chunk (vLLM's continuous usage stats and the like), which the provider outgrows as it
   * generates on: not the one the stop grace waits for (after-answer.ts).
   */
  isUsageFinal = false;
  text = "";
  /** The first choice's reasoning the client got from this segment (kept as `text` is, within the same bound). */
  reasoning = "";
  /**
   * The first choice's reasoning this segment generated that the client did not get (a continuation's before its
   * first output, a replay's while it repeated the delivered text): billed all the same (SegmentEnd.droppedReasoning).
   */
  droppedReasoning = "";
  isFirstOutput = true;
  /** A continuation segment has added to the client's answer. */
  hasAdded = false;
  /** A prefill continuation that answered afresh (PrefillEchoGuard): its usage covers the whole answer, as a replay's. */
  isRestarted = false;
  /** A continuation's repetition of the delivered text, matched and dropped (ReplayMatcher, PrefillEchoGuard). */
  repetition: { readonly droppedText: string } | undefined;
  /**
   * Text generated and never passed on besides a repetition: the event a replay diverged at, the first content of a
   * continuation abandoned as it opened (unrelayedOutput).
   */
  unrelayedText = "";
  readonly #state: RelayState;
  /**
   * The reasoning in events a prefill continuation holds while its text repeats the delivered text (PrefillEchoGuard):
   * dropped with them when it turns out to have started over, or ends undecided, and billed all the same. Before
   * 2026-12-06 it was lost: only the reasoning dropped outside the held events was counted.
   */
  #heldReasoning = "";
  /**
   * What the segment generated besides its first choice's text and reasoning (SegmentEnd.otherOutputTokens), counted
   * as it streams: a tool call is not retained text, and an answer of tool calls only was charged no output.
   */
  readonly #otherOutput: OutputTokenCount | undefined;
  /** The segment generated text, reasoning, a tool call or a refusal (delivered or not): see #isBelieved. */
  #hasGeneratedOutput = false;
  /**
   * Output relayed in events after the one `usage` came in: the count predates it (a running count, or a usage-only
   * chunk before the answer went on). Counted (#outputSinceUsage) and added to the count when the segment ends with no
   * later usage (settledUsage); and such a usage is not the provider's last report (hasFinalUsage). Until 2026-12-07
   * text read after the last running count was charged nowhere once the stop grace ran out, and an early usage-only
   * chunk ended the grace at the door's stop point, charging a count that predated text the client got.
   */
  #hasOutputSinceUsage = false;
  /** The usage settledUsage returned has the output read after the count added (SegmentEnd.isUsageExtended). */
  isUsageExtended = false;
  #outputSinceUsage: OutputTokenCount | undefined;
  readonly #countTokens: ((text: string) => number) | undefined;

  constructor(state: RelayState, countTokens: ((text: string) => number) | undefined) {
    this.#state = state;
    this.#countTokens = countTokens;
    this.#otherOutput =
      countTokens === undefined ? undefined : new OutputTokenCount(countTokens, { isFirstTextLeft: true });
  }

  end(outcome: StreamOutcome, reason: string, upstreamStatus?: number): void {
    if (this.outcome !== undefined) return;
    this.outcome = outcome;
    this.reason = reason;
    this.upstreamStatus = upstreamStatus;
    this.isLeftUnread = outcome === "client_aborted" && this.isWaitingOnClient;
  }

  /**
   * How max_stream_duration_ms ends the segment. While it waits for its client to take a batch, the writer is held by a
   * client that reads nothing, and pumpStream cuts that client at the same deadline (client_aborted, the provider not
   * blamed). The two timers are due together: until 2026-12-07 whichever the event loop ran first decided the record,
   * and on a loaded machine this one often won, recording stream_too_long against a provider that had answered well.
   */
  deadlineEnd(maxDurationMs: number): [StreamOutcome, string] {
    if (this.isWaitingOnClient) {
      return ["client_aborted", `the client read nothing while max_stream_duration_ms (${maxDurationMs} ms) ran out`];
    }
    return ["stream_too_long", `the stream exceeded max_stream_duration_ms (${maxDurationMs} ms)`];
  }

  /**
   * The upstream failed the stream with an in-band error (`json`, its event): a rate limit when the error names a 429,
   * as a 429 status is (errors/in-band-error.ts), else an error event; the status it named, if any, is kept.
   */
  endAtUpstreamError(json: Record<string, unknown> | undefined, reason: string): void {
    const status = inBandErrorStatus(json?.error);
    this.end(status === 429 ? "stream_rate_limited" : "stream_error_event", reason, status);
  }

  /**
   * The segment's failure came after the client's answer was whole: a success. A rate limit the upstream named in it
   * is still its provider's (SegmentEnd.rateLimitedAfterAnswer): turned into a success, its cooldown was lost.
   */
  endedWhole(): void {
    if (this.outcome === "stream_rate_limited") this.rateLimitedAfterAnswer = this.reason;
    this.outcome = "success";
    this.reason = "";
    this.upstreamStatus = undefined;
  }

  /** An event the client gets (`json` as the upstream sent it): its reasoning and its other output are counted. */
  noteDelivered(info: StreamEventInfo, json: Record<string, unknown>): void {
    this.reasoning = this.#withReasoning(this.reasoning, info, json);
    this.#otherOutput?.note(json);
  }

  /** A relayed event without a usage: its output comes after the segment's last count, if any (#hasOutputSinceUsage). */
  noteWithoutUsage(info: StreamEventInfo, json: Record<string, unknown>): void {
    if (this.usage === undefined || !hasOutput(info)) return;
    this.#hasOutputSinceUsage = true;
    if (this.#countTokens === undefined) return;
    this.#outputSinceUsage ??= new OutputTokenCount(this.#countTokens);
    this.#outputSinceUsage.note(json);
  }

  /**
   * A usage read on a relayed event (its own output included in it): `isFinal`, it came in a usage-only chunk or once
   * every choice had finished; `isEstimated`, an upstream gateway's estimate.
   */
  noteUsage(usage: TokenUsage, isFinal: boolean, isEstimated: boolean): void {
    this.usage = usage;
    this.isUsageFinal = isFinal;
    this.isUsageEstimated = isEstimated;
    this.#hasOutputSinceUsage = false;
    this.#outputSinceUsage = undefined;
  }

  /** The provider's last report is in: a final usage, and no output relayed after it (after-answer.ts AnswerEndGrace). */
  get hasFinalUsage(): boolean {
    return this.usage !== undefined && this.isUsageFinal && !this.#hasOutputSinceUsage;
  }

  /** An event generated and dropped (a continuation's thinking again, a replay's repetition or divergence). */
  noteDropped(info: StreamEventInfo, json: Record<string, unknown>): void {
    this.droppedReasoning = this.#withReasoning(this.droppedReasoning, info, json);
    this.#otherOutput?.note(json);
  }

  /**
   * Events its upstream sent that were never relayed, their text included: a continuation's first content when it was
   * abandoned as it opened (unrelayedOutput), the rest of a batch the segment ended in (its client left as the batch
   * came, after the first of the held events it released: before 2026-12-07 the others were counted nowhere).
   */
  noteUnrelayed(events: readonly SseEvent[], inspect: EventInspector): void {
    for (const event of events) {
      const info = inspect(event);
      if (info.json === undefined) continue;
      this.#noteOutput(info);
      this.unrelayedText += info.text;
      this.noteDropped(info, info.json);
      this.noteUnrelayedUsage(info, info.json);
    }
  }

  /**
   * A usage its upstream reported in an event never relayed (read with, or after, the segment's end): what the segment
   * is charged and recorded, as a relayed one's would be (an upstream gateway's estimate mark taken off and kept). One
   * that states no count (0 tokens: its fields missing, strings, negatives) is none, as a JSON answer's is; read as a
   * report it replaced the segment's estimate and its reservation's floor with 0 (in-band-end-batch-charges.test.ts).
   * Nor is one that states 0 output tokens for a segment that generated output (#isBelieved).
   */
  noteUnrelayedUsage(info: StreamEventInfo, json: Record<string, unknown>): void {
    if (info.usage === undefined || !this.#isBelieved(info.usage)) return;
    this.noteUsage(info.usage, this.isUsageFinal, takeUpstreamGatewayField(json, true)?.isUsageEstimated === true);
  }

  /**
   * The usage an event the relay reads states (`event` every event in order, as it comes), when it is believed
   * (#isBelieved). One that is not is taken off the event (an upstream gateway's estimate mark beside it goes too), so
   * the client is not told it either: the segment is unreported, and the estimate stands for it in every book (an
   * estimated usage chunk for a chat client that asked for usage). Only on a door that estimates usage: elsewhere (a
   * streamed transcript's) there is no estimate to stand for it, and the event goes as it came.
   */
  believedUsage(info: StreamEventInfo, event: SseEvent): TokenUsage | undefined {
    this.#noteOutput(info);
    const usage = info.usage;
    if (usage === undefined || this.#state.output === undefined || this.#isBelieved(usage)) return usage;
    if (info.json !== undefined && Reflect.deleteProperty(info.json, "usage")) event.data = JSON.stringify(info.json);
    return undefined;
  }

  /**
   * Whether a usage is a report: not when it states no count (0 tokens in all), nor, on a door that estimates usage,
   * 0 output tokens for a segment that generated text, reasoning, a tool call or a refusal. Some proxies fill `usage`
   * with zeros they never counted; the provider billed what it generated all the same. Until 2026-12-07 such a
   * relayed usage was believed: the stream was charged, recorded and counted 0 output (0 in all for zeros), and its
   * client told so (test/e2e/stream-without-usage.test.ts).
   */
  #isBelieved(usage: TokenUsage): boolean {
    if (usage.promptTokens + usage.completionTokens === 0) return false;
    return usage.completionTokens > 0 || !this.#hasGeneratedOutput || this.#state.output === undefined;
  }

  /**
   * The usage the segment ends with (SegmentEnd.usage): `usage`, unless it stated 0 output tokens before the segment
   * generated output (on its role chunk, believed then: nothing was generated yet) and the segment generated some
   * after it. Then it is none (#isBelieved), as it would have been after the output, and the output counted since
   * (relay-segment.ts counts on past a usage of 0 output tokens) stands for it: the estimate, sent to a client that
   * asked for usage. Until 2026-12-07 it stood as the report: 0 output tokens charged, recorded and counted. A believed
   * one with output relayed after it is that count plus the output since, counted (#hasOutputSinceUsage).
   */
  settledUsage(): TokenUsage | undefined {
    this.isUsageExtended = false;
    if (this.usage === undefined || this.#isBelieved(this.usage)) {
      const since = this.#outputSinceUsage?.tokens ?? 0;
      if (this.usage === undefined || since === 0) return this.usage;
      this.isUsageExtended = true;
      return { ...this.usage, completionTokens: this.usage.completionTokens + since };
    }
    this.usage = undefined;
    this.#state.hasPassedUsage = false;
    return undefined;
  }

  #noteOutput(info: StreamEventInfo): void {
    if (hasOutput(info)) this.#hasGeneratedOutput = true;
  }

  /**
   * An event a prefill continuation holds back while it may be repeating the delivered text. A usage it carries is the
   * provider's report, kept now: the held events are dropped when the segment ends undecided or started over (until
   * 2026-12-07 the usage with them, and the segment was charged an estimate:
   * test/e2e/streaming-continuation-charges.test.ts); if they go on after all, it is read again as they are relayed.
   */
  noteHeld(info: StreamEventInfo, json: Record<string, unknown>): void {
    this.#heldReasoning = this.#withReasoning(this.#heldReasoning, info, json);
    this.noteUnrelayedUsage(info, json);
  }

  /** The held events go on after all (a real continuation): their reasoning is counted as they are relayed. */
  releaseHeld(): void {
    this.#heldReasoning = "";
  }

  /** The held events are dropped (it started the answer over): their reasoning was generated, never delivered. */
  dropHeld(): void {
    this.droppedReasoning = this.#state.retainedReasoning(this.droppedReasoning, this.#heldReasoning);
    this.#heldReasoning = "";
  }

  /**
   * The text its provider generated that the client did not get from this segment (SegmentEnd.droppedText). Counted
   * with what it delivered when it reported no usage: before, a diverged replay counted nothing, and a prefill
   * continuation that started over counted only its new text (pipeline/segment-usage.ts).
   */
  get droppedText(): string {
    return (this.repetition?.droppedText ?? "") + this.unrelayedText;
  }

  /** What the segment generated besides the text it delivered, for its estimate (SegmentOutput). */
  output(): SegmentOutput {
    // Events still held when the segment ended are dropped with it (a cut while it repeated the delivered text).
    this.dropHeld();
    const droppedText = this.droppedText;
    const otherOutputTokens = this.#otherOutput?.tokens ?? 0;
    return {
      ...(droppedText === "" ? {} : { droppedText }),
      ...(this.reasoning === "" ? {} : { reasoning: this.reasoning }),
      ...(this.droppedReasoning === "" ? {} : { droppedReasoning: this.droppedReasoning }),
      ...(otherOutputTokens === 0 ? {} : { otherOutputTokens }),
      ...(this.isLeftUnread ? { isLeftUnread: true as const } : {}),
    };
  }

  /** `reasoning` with what the event adds to its first choice, kept as delivered text is (RelayState.retainedReasoning). */
  #withReasoning(reasoning: string, info: StreamEventInfo, json: Record<string, unknown>): string {
    return info.hasReasoning ? this.#state.retainedReasoning(reasoning, firstChoiceReasoning(json)) : reasoning;
  }
}

/**
 * What an opened stream generated that was never relayed (its first content, waiting in its pending events), for a
 * continuation abandoned as it opened (the client left, the stream's time ran out): billed, so its estimate counts it.
 * Before 2026-12-06 such a continuation was settled as if it had generated nothing, and kept its whole reservation.
 */
export function unrelayedOutput(
  stream: OpenedStream,
  state: RelayState,
  countTokens: ((text: string) => number) | undefined,
): SegmentOutput {
  const progress = new SegmentProgress(state, countTokens);
  progress.noteUnrelayed(stream.pendingEvents, stream.inspect);
  return progress.output();
}

/** The reasoning text a chunk adds to its first choice, the one at index 0 (chat-choice.ts, chat-reasoning.ts). */
function firstChoiceReasoning(json: Record<string, unknown>): string {
  const delta = firstChunkChoice(json.choices)?.delta;
  return isRecord(delta) ? reasoningOf(delta) : "";
}

/** The event carries generated output: text, reasoning, a tool call or a refusal. */
function hasOutput(info: StreamEventInfo): boolean {
  return info.text !== "" || info.hasToolCall || info.hasReasoning || info.hasRefusal || isResponsesOutput(info.json);
}

/** A native Responses stream's deltas of output besides text (its events' info names only the text delta's). */
const RESPONSES_OUTPUT_DELTAS = new Set([
  "response.function_call_arguments.delta",
  "response.custom_tool_call_input.delta",
  "response.refusal.delta",
  "response.reasoning_summary_text.delta",
  "response.reasoning_text.delta",
]);

/**
 * A native Responses event of generated output that is no text delta: a call's, a refusal's or reasoning's delta, or a
 * finished item other than a message (a call, reasoning even when encrypted only). Until 2026-12-07 only text was
 * output to #isBelieved, and a usage of 0 output tokens beside a function call was the report.
 */
function isResponsesOutput(json: Record<string, unknown> | undefined): boolean {
  const type = json?.type;
  if (typeof type !== "string") return false;
  if (RESPONSES_OUTPUT_DELTAS.has(type)) return true;
  const item = json?.item as { type?: unknown } | null | undefined;
  return type === "response.output_item.done" && typeof item?.type === "string" && item.type !== "message";
}
