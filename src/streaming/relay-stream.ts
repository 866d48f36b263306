// Relays an opened upstream stream to the client, event by event, as it arrives.
//
// Hazards handled here (each is a test):
// - Backpressure: when the client's socket buffer is full we stop reading upstream until 'drain', so a slow
//   client never makes the gateway buffer a whole answer in memory.
// - Client gone: the upstream request is aborted at once (no leaked socket, no tokens spent for nobody).
// - Cut, stall (`stream_idle_timeout_ms` of silence), an in-band error event, too many malformed events, or
//   the duration cap: never passed off as a normal end. The client gets one final
//   `data: {"error":{...}}` event and no `[DONE]` (docs/streaming.md).
// - A stream that closes cleanly after a finish_reason but without `[DONE]` is finalised at once with `[DONE]`;
//   so is one that sends its usage chunk (the last one before `[DONE]`) and then neither `[DONE]` nor closes,
//   and one that goes silent after every choice finished.
// - Continuation (docs/streaming.md, "Continuation"): a broken stream is spliced with another upstream's output
//   from a `ContinuationSource`; its chunks get the first stream's id, its usage chunk the combined counts.
import type { ServerResponse } from "node:http";
import type { GatewayError } from "../errors/gateway-error.ts";
import { StreamInterruptedError, UpstreamTimeoutError } from "../errors/gateway-error.ts";
import { renderError } from "../errors/render-error.ts";
import type { OpenedStream } from "./opened-stream.ts";
import { SSE_DONE, sseData } from "./sse-format.ts";
import type { SseEvent } from "./sse-parser.ts";
import { inspectEvent } from "./stream-event.ts";

export type RelayEnd =
  | "done"
  | "finished_without_done"
  | "cut"
  | "stalled"
  | "error_event"
  | "malformed"
  | "diverged"
  | "too_long"
  | "client_aborted";

export interface RelayResult {
  readonly end: RelayEnd;
  readonly isSuccess: boolean;
  readonly reason: string;
  readonly usage: { promptTokens: number; completionTokens: number } | undefined;
  /** First-choice text delivered to the client (what a continuation would build on). */
  readonly deliveredText: string;
  readonly malformedEvents: number;
  /** Continuations spliced in after mid-stream failures, in order. */
  readonly continuations: readonly ContinuationRecord[];
  /** Whether the first segment (the original upstream stream) ended well; false when it had to be continued. */
  readonly isFirstSegmentSuccess: boolean;
  /** The client left before the end (also during a continuation, when `end` still names the original failure). */
  readonly isClientGone: boolean;
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

/** A stream that continues a broken one. */
export interface ContinuationSegment {
  readonly stream: OpenedStream;
  readonly provider: string;
  readonly model: string;
  readonly mode: "prefill" | "replay";
  /** For "replay": the text already delivered, which the fresh answer must start with; it is not sent twice. */
  readonly repeatsText: string;
  /** The gateway asked this upstream for usage itself: its usage-only chunk is not for the client. */
  readonly isUsageInjected: boolean;
  /**
   * Called exactly once when this segment ends (stats, budgets, concurrency slot), also when it never got to
   * stream because the client had left.
   */
  finish(end: RelayEnd, usage: RelayResult["usage"]): void;
}

/** Supplies continuations; `undefined` when nothing (more) can continue. */
export interface ContinuationSource {
  next(failure: { end: RelayEnd; reason: string; deliveredText: string }): Promise<ContinuationSegment | undefined>;
}

export interface RelayOptions {
  readonly maxDurationMs: number;
  /** Malformed events tolerated (skipped and reported) before the stream counts as broken. */
  readonly maxMalformedEvents: number;
  /** Strip usage-only chunks (the gateway asked for usage, the client did not). */
  readonly shouldStripUsage: boolean;
  /** Where continuations come from; absent or unsound (tool calls, n > 1) means a broken stream ends in an error. */
  readonly continuation?: ContinuationSource;
  /** Prompt tokens of the original request (estimated), for the combined usage of a prefill-continued stream. */
  readonly promptTokens?: number;
  /** Counts completion tokens of delivered text whose usage the provider never reported (a cut segment). */
  countTokens?(text: string): number;
  onMalformedEvent?(data: string): void;
  onContinuation?(record: ContinuationRecord): void;
}

/** What one segment (one upstream stream) did. */
interface SegmentOutcome {
  end: RelayEnd;
  reason: string;
  usage: RelayResult["usage"];
  text: string;
}

const CONTINUABLE_ENDS: ReadonlySet<RelayEnd> = new Set(["cut", "stalled", "error_event", "malformed", "diverged"]);

export async function relayStream(
  stream: OpenedStream,
  response: ServerResponse,
  options: RelayOptions,
): Promise<RelayResult> {
  const startedAtMs = Date.now();
  const textParts: string[] = [];
  const continuations: ContinuationRecord[] = [];
  let malformedEvents = 0;
  let isContinuable = options.continuation !== undefined;
  /** The first segment's chunk id, reused on continuation chunks so the client sees one answer. */
  let streamId: string | undefined;
  let firstFailure: { end: RelayEnd; reason: string } | undefined;
  /** Completion tokens of the text delivered by segments that broke (reported, or counted when they were not). */
  let earlierCompletionTokens = 0;
  /** The prompt tokens the first upstream reported, if it got that far. */
  let firstPromptTokens: number | undefined;
  /** The usage the client was told about after a continuation: the whole answer, not the last segment. */
  let combinedUsage: RelayResult["usage"];
  let isFirstSegmentSuccess = false;
  // Choice indexes the client has seen, and those that got a finish_reason: the answer is complete when all did.
  const seenChoices = new Set<number>();
  const finishedChoices = new Set<number>();
  const isAnswerFinished = (): boolean => seenChoices.size > 0 && finishedChoices.size === seenChoices.size;

  let segment: { stream: OpenedStream; continuation: ContinuationSegment | undefined } = {
    stream,
    continuation: undefined,
  };
  let outcome: SegmentOutcome;
  for (;;) {
    const remainingMs = options.maxDurationMs - (Date.now() - startedAtMs);
    outcome = await relaySegment(segment.stream, segment.continuation, remainingMs);
    const isSuccess = outcome.end === "done" || outcome.end === "finished_without_done";
    segment.continuation?.finish(outcome.end, outcome.usage);
    if (segment.continuation === undefined) {
      isFirstSegmentSuccess = isSuccess;
      firstPromptTokens = outcome.usage?.promptTokens;
    }
    if (isSuccess || outcome.end === "client_aborted" || response.destroyed) break;
    firstFailure ??= { end: outcome.end, reason: outcome.reason };
    if (!isContinuable || !CONTINUABLE_ENDS.has(outcome.end) || options.continuation === undefined) break;
    const deliveredText = textParts.join("");
    earlierCompletionTokens += outcome.usage?.completionTokens ?? options.countTokens?.(outcome.text) ?? 0;
    const next = await options.continuation.next({ end: outcome.end, reason: outcome.reason, deliveredText });
    if (next === undefined) break;
    if (response.destroyed) {
      // The client left while the continuation was being opened: nobody will read it. Hang up on it and give
      // its slot back, or the upstream call streams on for nobody and the slot is never freed.
      next.stream.controller.abort();
      next.finish("client_aborted", undefined);
      break;
    }
    const record: ContinuationRecord = {
      provider: next.provider,
      model: next.model,
      afterChars: deliveredText.length,
      reason: outcome.reason,
      mode: next.mode,
    };
    continuations.push(record);
    options.onContinuation?.(record);
    segment = { stream: next.stream, continuation: next };
  }

  const isSuccess = outcome.end === "done" || outcome.end === "finished_without_done";
  const isClientGone = !isSuccess && (outcome.end === "client_aborted" || response.destroyed);
  if (!response.destroyed) {
    if (isSuccess) response.end(SSE_DONE);
    else if (outcome.end !== "client_aborted") {
      // When continuation failed too, the client hears about the original failure (the cut or stall), not
      // about what went wrong while trying to rescue it.
      const failure = firstFailure ?? outcome;
      response.end(sseData(renderError(streamError(failure.end, failure.reason))));
    }
  }
  const usage = continuations.length === 0 ? outcome.usage : combinedUsage;
  return {
    end: isSuccess || firstFailure === undefined ? outcome.end : firstFailure.end,
    isSuccess,
    reason: firstFailure?.reason ?? outcome.reason,
    usage,
    deliveredText: textParts.join(""),
    malformedEvents,
    continuations,
    isFirstSegmentSuccess,
    isClientGone,
  };

  function noteChoices(json: Record<string, unknown>): void {
    const choices = json.choices;
    if (!Array.isArray(choices)) return;
    for (const choice of choices as { index?: unknown; finish_reason?: unknown }[]) {
      if (choice === null || typeof choice !== "object") continue;
      const index = typeof choice.index === "number" ? choice.index : 0;
      seenChoices.add(index);
      if (typeof choice.finish_reason === "string") finishedChoices.add(index);
    }
  }

  /**
   * The usage of the whole answer the client got, from a continuation's own usage. A replay regenerated the
   * answer from the start, so its counts already cover all of it. A prefill continuation counted the delivered
   * text as prompt: the prompt is the original request's, and the completion the delivered part plus its own.
   */
  function combineUsage(
    segmentUsage: { promptTokens: number; completionTokens: number },
    mode: "prefill" | "replay",
  ): { promptTokens: number; completionTokens: number } {
    if (mode === "replay") return segmentUsage;
    return {
      promptTokens: firstPromptTokens ?? options.promptTokens ?? segmentUsage.promptTokens,
      completionTokens: earlierCompletionTokens + segmentUsage.completionTokens,
    };
  }

  async function relaySegment(
    current: OpenedStream,
    continuation: ContinuationSegment | undefined,
    remainingMs: number,
  ): Promise<SegmentOutcome> {
    let end: RelayEnd | undefined;
    let reason = "";
    let usage: RelayResult["usage"];
    let segmentText = "";
    // Replay mode: characters of the delivered text the fresh answer has matched so far.
    let replayed = 0;
    const repeatsText = continuation?.mode === "replay" ? continuation.repeatsText : "";
    const shouldStripUsage = continuation === undefined ? options.shouldStripUsage : continuation.isUsageInjected;
    let isFirstOutput = true;

    const abortUpstream = (why: RelayEnd, text: string): void => {
      if (end === undefined) {
        end = why;
        reason = text;
      }
      current.controller.abort();
    };
    const onClientClose = (): void => {
      if (!response.writableFinished) abortUpstream("client_aborted", "client disconnected");
    };
    response.on("close", onClientClose);
    const idleTimer = setTimeout(
      () => abortUpstream("stalled", `no data for stream_idle_timeout_ms (${current.streamIdleTimeoutMs} ms)`),
      current.streamIdleTimeoutMs,
    );
    const durationTimer = setTimeout(
      () => abortUpstream("too_long", `the stream exceeded max_stream_duration_ms (${options.maxDurationMs} ms)`),
      Math.max(1, remainingMs),
    );

    /** Turns parsed events into output; sets `end` when the segment is finished or broken. */
    const render = (events: SseEvent[]): string => {
      let out = "";
      for (const event of events) {
        const info = inspectEvent(event);
        if (info.isDone) {
          end ??= "done";
          break;
        }
        if (info.isMalformed) {
          malformedEvents++;
          options.onMalformedEvent?.(event.data);
          if (malformedEvents > options.maxMalformedEvents) {
            end ??= "malformed";
            reason = `${malformedEvents} malformed events`;
            break;
          }
          continue;
        }
        if (info.isError) {
          end ??= "error_event";
          reason = describeUpstreamError(info.json);
          break;
        }
        const json = info.json;
        if (json === undefined) continue;
        let text = info.text;
        if (continuation !== undefined && replayed < repeatsText.length) {
          // Replay: the fresh answer must first repeat what the client already has; that part is dropped.
          if (text === "" && info.finishReason !== undefined) {
            end ??= "diverged";
            reason = "the fresh answer ended before repeating what was already delivered";
            break;
          }
          const overlap = Math.min(text.length, repeatsText.length - replayed);
          if (text.slice(0, overlap) !== repeatsText.slice(replayed, replayed + overlap)) {
            end ??= "diverged";
            reason = "the fresh answer does not start with the text already delivered";
            break;
          }
          replayed += overlap;
          text = text.slice(overlap);
          if (text === "" && info.finishReason === undefined) continue;
          setFirstChoiceText(json, text);
        } else if (continuation !== undefined && !info.hasContent && info.usage === undefined) {
          // role-only and empty chunks of the new stream add nothing to an answer already under way
          continue;
        }

        // From here on the event is part of the client's answer.
        noteChoices(json);
        // A finished answer is not continued (that would append text after the model's own stop), and neither
        // is a tool call or n > 1: a prefill cannot resume a half-written call or several choices.
        if (info.finishReason !== undefined || hasToolCallsOrManyChoices(json)) isContinuable = false;
        const isUsageChunk = info.usage !== undefined && !info.hasContent && isUsageOnly(json);
        if (info.usage !== undefined) {
          usage = info.usage;
          if (continuation !== undefined) {
            // The client hears about its whole answer, not about the segment that happened to finish it.
            const combined = combineUsage(info.usage, continuation.mode);
            combinedUsage = combined;
            json.usage = {
              ...(json.usage as Record<string, unknown>),
              prompt_tokens: combined.promptTokens,
              completion_tokens: combined.completionTokens,
              total_tokens: combined.promptTokens + combined.completionTokens,
            };
          }
        }
        // The usage chunk is the last one before `[DONE]` (OpenAI's stream_options contract): after it, an
        // upstream that neither sends `[DONE]` nor closes must not hold the client until the idle timeout.
        if (isUsageChunk && isAnswerFinished()) end ??= "finished_without_done";
        if (isUsageChunk && shouldStripUsage) {
          if (end !== undefined) break;
          continue;
        }
        if (text !== "") {
          textParts.push(text);
          segmentText += text;
        }
        if (continuation === undefined) {
          streamId ??= typeof json.id === "string" ? json.id : undefined;
          out += sseData(event.data);
        } else {
          // A continuation segment: splice it into the client's stream as part of the first one.
          if (streamId !== undefined) json.id = streamId;
          if (isFirstOutput) {
            isFirstOutput = false;
            json.x_gateway = { continuation: continuations[continuations.length - 1] ?? null };
          }
          out += sseData(json);
        }
        if (end !== undefined) break;
      }
      events.length = 0;
      return out;
    };

    try {
      const first = render(current.pendingEvents);
      if (first !== "" && !response.write(first)) await drained(response);
      while (end === undefined) {
        const next = await current.iterator.next();
        if (next.done) {
          const finish = current.parser.finish();
          const tail = render(current.pendingEvents);
          if (tail !== "" && !response.destroyed) response.write(tail);
          if (end === undefined) {
            if (isAnswerFinished() && !finish.hadPartialEvent) end = "finished_without_done";
            else {
              end = "cut";
              reason = "the upstream closed the stream before it finished";
            }
          }
          break;
        }
        idleTimer.refresh();
        current.parser.push(next.value);
        const out = render(current.pendingEvents);
        if (out !== "" && !response.write(out)) await drained(response);
      }
    } catch (error) {
      if (end === undefined) {
        end = "cut";
        reason = `the upstream connection broke: ${error instanceof Error ? error.message : String(error)}`;
      }
    } finally {
      clearTimeout(idleTimer);
      clearTimeout(durationTimer);
      response.off("close", onClientClose);
    }
    if (end === "stalled" && isAnswerFinished() && !current.parser.finish().hadPartialEvent) {
      // Silence after every choice finished: the answer is whole, only the `[DONE]` is missing.
      end = "finished_without_done";
      reason = "";
    }
    const finalEnd: RelayEnd = end ?? "cut";
    if (finalEnd === "done" || finalEnd === "finished_without_done") {
      // Do not wait for the upstream to close after the end; if it lingers, cut it loose.
      void drainQuietly(current);
    } else {
      // An error event or too many malformed events stop the relay while the upstream response may still be
      // open (providers often keep it so after an error): hang up, or the socket and its tokens leak.
      // A no-op when the body already ended or the request was aborted.
      current.controller.abort();
    }
    return { end: finalEnd, reason, usage, text: segmentText };
  }
}

/** Tool-call streams and n > 1 cannot be continued soundly: a prefill cannot resume a half-written call. */
function hasToolCallsOrManyChoices(json: Record<string, unknown> | undefined): boolean {
  const choices = json?.choices;
  if (!Array.isArray(choices)) return false;
  for (const choice of choices as { index?: unknown; delta?: { tool_calls?: unknown; function_call?: unknown } }[]) {
    if (typeof choice.index === "number" && choice.index > 0) return true;
    if (choice.delta?.tool_calls !== undefined || choice.delta?.function_call !== undefined) return true;
  }
  return false;
}

function setFirstChoiceText(json: Record<string, unknown>, text: string): void {
  const choice = (json.choices as Record<string, unknown>[] | undefined)?.[0];
  if (choice === undefined) return;
  const delta = choice.delta as Record<string, unknown> | undefined;
  if (delta !== undefined) delta.content = text;
  else if (typeof choice.text === "string") choice.text = text;
}

export function streamError(end: RelayEnd, reason: string): GatewayError {
  const message = `The upstream stream failed after it had started: ${reason}.`;
  return end === "stalled" || end === "too_long"
    ? new UpstreamTimeoutError(message)
    : new StreamInterruptedError(message);
}

function describeUpstreamError(json: Record<string, unknown> | undefined): string {
  const error = json?.error;
  if (error !== null && typeof error === "object" && typeof (error as { message?: unknown }).message === "string") {
    return `the upstream sent an error event: ${(error as { message: string }).message.slice(0, 300)}`;
  }
  return "the upstream sent an error event";
}

function isUsageOnly(json: Record<string, unknown> | undefined): boolean {
  const choices = json?.choices;
  return !Array.isArray(choices) || choices.length === 0;
}

function drained(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      response.off("drain", done);
      response.off("close", done);
      resolve();
    };
    response.on("drain", done);
    response.on("close", done);
  });
}

async function drainQuietly(stream: OpenedStream): Promise<void> {
  const timer = setTimeout(() => stream.controller.abort(), 1000);
  try {
    for (;;) {
      const next = await stream.iterator.next();
      if (next.done) break;
    }
  } catch {
    // aborted or reset after [DONE]: nothing left to deliver
  } finally {
    clearTimeout(timer);
  }
}
