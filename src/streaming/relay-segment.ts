// Relays one upstream stream (one segment of the client's answer), event by event, as it arrives: it yields
// batches of chunks for the client and returns how the segment ended.
//
// Hazards handled here (each is a test):
// - Backpressure: the consumer pulls; while it waits for a slow client we do not read upstream, so a slow client
//   never makes the gateway buffer a whole answer, and the idle timer does not count that time (idle-watchdog.ts).
// - Client gone (`signal`): the upstream request is aborted at once (no leaked socket, no tokens for nobody).
// - Cut, stall (`stream_idle_timeout_ms` of silence), an in-band error event, too many malformed events, or the
//   duration cap: never passed off as a normal end.
// - A stream that closes cleanly after a finish_reason but without `[DONE]` is a success; so is one that sends
//   its usage chunk (the last one before `[DONE]`) and then neither `[DONE]` nor closes, one that goes silent
//   after every choice finished, and one whose connection breaks then (the answer is whole either way).
// - A prefill continuation that ignores the prefill and answers afresh: its repetition of the delivered text is held
//   back and dropped (PrefillEchoGuard), so the client does not get it twice.
import { abortReasonText } from "../errors/gateway-error.ts";
import type { StreamOutcome } from "../errors/outcomes.ts";
import { isRecord } from "../is-record.ts";
import { requestTimers } from "../request-timers.ts";
import { AnswerEndGrace, drainQuietly } from "./after-answer.ts";
import {
  hasManyChoices,
  isNothingNew,
  PrefillEchoGuard,
  ReplayMatcher,
  setFirstChoiceText,
} from "./continuation-splice.ts";
import type { EchoedPrompt } from "./echoed-prompt.ts";
import { takeFailure } from "./failed-in-place.ts";
import { IdleWatchdog } from "./idle-watchdog.ts";
import { MissingRoles } from "./missing-roles.ts";
import { inspectorOf, type OpenedStream } from "./opened-stream.ts";
import type { RelayState } from "./relay-state.ts";
import type {
  ContinuationSegment,
  RelaySegment,
  SegmentEnd,
  SegmentOptions,
  StreamBatch,
  StreamChunk,
} from "./relay-types.ts";
import { SegmentProgress } from "./segment-progress.ts";
import { type SseEvent, SseLimitError } from "./sse-parser.ts";
import { isUsageOnly } from "./stream-event.ts";
import { ToolCallDeltas } from "./tool-call-deltas.ts";
import { takeUpstreamGatewayField } from "./upstream-gateway-field.ts";

export async function* relaySegment(
  segment: RelaySegment,
  continuation: ContinuationSegment | undefined,
  state: RelayState,
  options: SegmentOptions,
): AsyncGenerator<StreamBatch, SegmentEnd, void> {
  const current = segment.stream;
  const progress = new SegmentProgress(state, options.countTokens);
  const render = renderer(
    current,
    continuation,
    state,
    progress,
    continuation === undefined ? options.shouldStripUsage : segment.isUsageInjected,
    continuation === undefined ? options.echoedPrompt : undefined,
  );
  const stop = (outcome: StreamOutcome, reason: string): void => {
    progress.end(outcome, reason);
    current.controller.abort();
  };
  // The gateway's own exit aborts with the error it ends the request with (pipeline/open-requests.ts).
  const onClientGone = (): void => stop("client_aborted", abortReasonText(options.signal));
  if (options.signal.aborted) onClientGone();
  else options.signal.addEventListener("abort", onClientGone, { once: true });
  const idle = new IdleWatchdog(current.streamIdleTimeoutMs, () =>
    stop("stream_stalled", `no data for stream_idle_timeout_ms (${current.streamIdleTimeoutMs} ms)`),
  );
  const durationTimer = requestTimers.after(Math.max(1, options.remainingMs), () =>
    stop(...progress.deadlineEnd(options.maxDurationMs)),
  );
  // The body ended on its own: its partial-event check is made there (the parser is reset after it).
  let hasBodyEnded = false;
  const grace = new AnswerEndGrace();
  try {
    const first = render(current.pendingEvents);
    if (first.length > 0) yield first;
    // Time spent waiting for the upstream since it last completed a line: bytes trickled into one endless line
    // keep the idle timer from firing, but they are not progress (the client's waits are not counted).
    let waitedWithoutLineMs = 0;
    let linesSeen = current.parser.completedLines;
    while (progress.outcome === undefined) {
      // Asked once the client took the batch: the door ended the answer in it (a stop sequence it matched).
      if (options.isAnswerEnded?.() === true) grace.start(progress, stop);
      if (progress.outcome !== undefined) break;
      options.onUpstreamWait?.();
      idle.waitForUpstream();
      const waitStartedMs = performance.now();
      const next = await current.iterator.next();
      idle.pause();
      waitedWithoutLineMs += performance.now() - waitStartedMs;
      if (next.done) {
        hasBodyEnded = true;
        const finish = current.parser.finish();
        const tail = render(current.pendingEvents);
        if (tail.length > 0 && !options.signal.aborted) yield tail;
        if (state.choices.isAnswerFinished && !finish.hadPartialEvent) progress.end("success", "");
        else progress.end("stream_cut", "the upstream closed the stream before it finished");
        break;
      }
      current.parser.push(next.value);
      if (current.parser.completedLines !== linesSeen) {
        linesSeen = current.parser.completedLines;
        waitedWithoutLineMs = 0;
      } else if (waitedWithoutLineMs > current.streamIdleTimeoutMs) {
        stop(
          "stream_stalled",
          `no complete line for stream_idle_timeout_ms (${current.streamIdleTimeoutMs} ms), only a trickle of bytes`,
        );
      }
      const out = render(current.pendingEvents);
      progress.isWaitingOnClient = out.length > 0;
      if (out.length > 0) yield out;
      progress.isWaitingOnClient = false;
    }
  } catch (error) {
    if (error instanceof SseLimitError) progress.end("stream_too_large", error.message);
    else {
      progress.end(
        "stream_cut",
        `the upstream connection broke: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  } finally {
    idle.clear();
    grace.clear();
    durationTimer.cancel();
    options.signal.removeEventListener("abort", onClientGone);
    // Also when the relay is closed mid-segment (its end then never returns): relay-stream.ts settles it from here.
    state.segmentOutput = progress.output();
    // The consumer returned early (the generator was closed at a yield): nobody reads this upstream any more.
    if (progress.outcome === undefined) current.controller.abort();
  }
  if (
    (progress.outcome === "stream_stalled" || (progress.outcome === "stream_cut" && !hasBodyEnded)) &&
    state.choices.isAnswerFinished &&
    !current.parser.finish().hadPartialEvent
  ) {
    // Silence, or a broken connection, after every choice finished: the answer is whole, only the `[DONE]` (and
    // perhaps the usage chunk) is missing. An error event would throw away an answer the client already has.
    progress.outcome = "success";
    progress.reason = "";
  } else if (progress.outcome !== "client_aborted" && options.isAnswerEnded?.() === true) {
    // The adapter ended the answer before this failure (a stop sequence it matched): whole, as above. As a failure it
    // started a continuation for text nobody would see, and recorded a 502 for an answer the client got whole.
    progress.endedWhole();
  }
  const outcome: StreamOutcome = progress.outcome ?? "stream_cut";
  if (outcome === "success" && !progress.isPastAnswerEnd) {
    // Do not wait for the upstream to close after the end; if it lingers, cut it loose.
    void drainQuietly(segment);
  } else {
    // An error event or too many malformed events stop the relay while the upstream response may still be open
    // (providers often keep it so after an error): hang up, or the socket and its tokens leak. A no-op when the
    // body already ended or the request was aborted. Past the door's end of the answer (after-answer.ts) too, at
    // once: the provider, not told of the stop sequence, would generate on (and bill) for nobody.
    current.controller.abort();
  }
  return {
    outcome,
    reason: progress.reason,
    ...(progress.upstreamStatus === undefined ? {} : { upstreamStatus: progress.upstreamStatus }),
    ...(progress.rateLimitedAfterAnswer === undefined
      ? {}
      : { rateLimitedAfterAnswer: progress.rateLimitedAfterAnswer }),
    usage: progress.settledUsage(),
    ...(progress.usage !== undefined && progress.isUsageEstimated ? { isUsageEstimated: true as const } : {}),
    ...(progress.isUsageExtended ? { isUsageExtended: true as const } : {}),
    ...(progress.isRestarted ? { isRestarted: true as const } : {}),
    text: progress.text,
    ...state.segmentOutput,
    // A continuation that failed before it added anything is settled with what it used (pipeline/segment-charge.ts).
    ...(continuation !== undefined && outcome !== "success" && !progress.hasAdded
      ? { hasAddedNothing: true as const }
      : {}),
  };
}

/** Turns parsed events into chunks for the client; ends the segment when an event finishes or breaks it. */
function renderer(
  stream: OpenedStream,
  continuation: ContinuationSegment | undefined,
  state: RelayState,
  progress: SegmentProgress,
  shouldStripUsage: boolean,
  echoedPrompt: EchoedPrompt | undefined,
): (events: SseEvent[]) => StreamChunk[] & { bytes?: Uint8Array | undefined } {
  const inspect = inspectorOf(stream);
  const replay = continuation?.mode === "replay" ? new ReplayMatcher(continuation.repeatsText) : undefined;
  const echo = continuation?.mode === "prefill" ? new PrefillEchoGuard(state.deliveredText()) : undefined;
  progress.repetition = replay ?? echo;
  const toolCallDeltas = new ToolCallDeltas();
  // A continuation's chunks join a stream whose role the client already has.
  const missingRoles = continuation === undefined ? new MissingRoles() : undefined;
  return (events) => {
    const out: StreamChunk[] & { bytes?: Uint8Array | undefined } = [];
    let index = 0;
    for (; index < events.length; index++) {
      const event = events[index] as SseEvent;
      const info = inspect(event);
      if (info.isDone) {
        // `[DONE]` after an answer whose chat choices never got a finish_reason: the upstream says it is whole,
        // so the client gets the finish OpenAI would have sent (a stream judged cut never reaches here).
        const closing = state.choices.closingChunk(state.streamId);
        if (closing !== undefined) {
          toolCallDeltas.completeArguments(closing);
          state.choices.note(closing);
          out.push({ data: JSON.stringify(closing), json: closing });
        }
        progress.end("success", "");
        break;
      }
      if (info.isMalformed) {
        // A native Responses stream's malformed event (responses-stream-check.ts) ends it at once: it is never kept.
        if (info.fault !== undefined) progress.end("bad_response", info.fault);
        else if (!state.noteMalformed(event.data)) continue;
        else progress.end("stream_malformed", `${state.malformedEvents} malformed events`);
        break;
      }
      if (info.isError) {
        // After every choice finished the answer is whole: an error then (a provider failing its bookkeeping after
        // the stop) would turn an answer the client already has into a failure. It ends the stream as `[DONE]`
        // would, as silence or a broken connection there does (below); a 429 it names still cools the deployment down.
        progress.endAtUpstreamError(info.json, state.describeUpstreamError(info.json));
        if (state.choices.isAnswerFinished) progress.endedWhole();
        // An error that carries the provider's count of what the segment used (never relayed: the error is the end).
        if (info.json !== undefined) progress.noteUnrelayedUsage(info, info.json);
        break;
      }
      const json = info.json;
      if (json === undefined) continue;
      // What the output counts read: without a legacy completion's echoed prompt (the client gets the chunk whole).
      const generated = echoedPrompt?.generated(json, info.text);
      const counted = generated?.json ?? json;
      // A usage stating 0 output tokens for a segment that generated output is taken off, unbelieved (segment-progress).
      // An echo of a prompt of tokens cannot be told from output: its {prompt n, completion 0} is believed.
      const usage = progress.believedUsage(
        generated === undefined ? info : { ...info, text: echoedPrompt?.hasTokenPrompt ? "" : generated.firstText },
        event,
      );
      // Only the gateway's own facts reach the doors: an upstream's `x_gateway` is taken off here (its estimate mark
      // beside a usage is kept, as ours, and the usage recorded as estimated).
      const foreign = takeUpstreamGatewayField(json, usage !== undefined);
      if (foreign !== undefined) event.data = JSON.stringify(json);
      let text = info.text;
      if (replay !== undefined && !replay.isDone) {
        // Replay: the fresh answer must first repeat what the client already has; that part is dropped.
        const step = replay.step(info);
        // What it generated before it repeated the delivered text whole (its reasoning, the diverging event) is
        // dropped, but billed: counted for its estimate (SegmentEnd.droppedReasoning).
        if (step.kind !== "pass") progress.noteDropped(info, json);
        if (step.kind === "diverged") {
          progress.unrelayedText += info.text;
          progress.noteUnrelayedUsage(info, json); // a finish before the repetition was whole may carry the usage
          progress.end("stream_diverged", step.reason);
          break;
        }
        if (step.kind === "skip") continue;
        text = step.text;
        setFirstChoiceText(json, text);
      } else {
        const echoed = echo?.step(event, info);
        if (echoed?.kind === "hold") {
          progress.noteHeld(info, json);
          continue;
        }
        if (echo !== undefined && echoed?.kind === "continuing") {
          // A real continuation after all: the held events go on first, in order, then this one (index-- revisits).
          progress.releaseHeld();
          events.splice(index, 0, ...echo.takeHeld());
          index--;
          continue;
        }
        if (echoed?.kind === "restarted") {
          progress.isRestarted = true;
          progress.dropHeld();
          text = echoed.text;
          setFirstChoiceText(json, text);
          if (text === "" && !info.hasToolCall && !info.hasRefusal && info.finishReason === undefined) {
            progress.noteDropped(info, json);
            continue;
          }
        } else if (continuation !== undefined && isNothingNew(info, progress.hasAdded)) {
          progress.noteDropped(info, json);
          continue;
        }
      }

      // From here on the event is part of the client's answer (counted as its upstream sent it, before the gateway
      // completes or renumbers its tool calls).
      progress.hasAdded = true;
      progress.noteDelivered(info, counted);
      // Asked of every chunk, not only those with a call: an empty `tool_calls` array is taken out too.
      const isToolCallNormalized = toolCallDeltas.normalize(json);
      const isToolCallChanged =
        (info.finishReason !== undefined && toolCallDeltas.completeArguments(json)) || isToolCallNormalized;
      if ((missingRoles?.fill(json) ?? false) || isToolCallChanged) event.data = JSON.stringify(json);
      // `finish_reason: "error"` on a chunk that also carries output (OpenRouter fails a stream in place): the output
      // is the client's, the failure ends the segment as an error event would (continued, or the final error event);
      // it is not the answer's finish, which the client would otherwise take for a whole answer.
      const failedInPlace = info.finishReason === "error" ? takeFailure(json) : undefined;
      if (failedInPlace !== undefined) event.data = JSON.stringify(json);
      state.choices.note(json);
      // A finished answer is not continued (that would append text after the model's own stop), and neither
      // is a tool call or n > 1 (a prefill cannot resume a half-written call or several choices), nor a refusal
      // (only text is matched in a replay: a refusal would be repeated).
      if (
        (info.finishReason !== undefined && failedInPlace === undefined) ||
        info.hasToolCall ||
        info.hasRefusal ||
        hasManyChoices(json)
      ) {
        state.isContinuable = false;
      }
      const isUsageChunk = info.usage !== undefined && !info.hasContent && isUsageOnly(json);
      if (usage !== undefined) {
        progress.noteUsage(usage, isUsageChunk || state.choices.isAnswerFinished, foreign?.isUsageEstimated === true);
        if (continuation !== undefined) {
          state.spliceUsage(
            json,
            usage,
            progress.isRestarted ? "replay" : continuation.mode,
            progress.isUsageEstimated,
          );
        }
      } else progress.noteWithoutUsage(info, counted);
      // The usage chunk is the last one before `[DONE]` (OpenAI's stream_options contract): after it, an
      // upstream that neither sends `[DONE]` nor closes must not hold the client until the idle timeout.
      // Past the door's end of the answer, any usage is the one waited for (after-answer.ts AnswerEndGrace).
      if (info.usage !== undefined && (progress.isPastAnswerEnd || (isUsageChunk && state.choices.isAnswerFinished))) {
        progress.end("success", "");
      }
      if (isUsageChunk && (shouldStripUsage || usage === undefined)) {
        if (progress.outcome !== undefined) break;
        continue;
      }
      if (text !== "") {
        state.deliver(text);
        // Kept only while it may still be needed (a continuation, or counting what a cut segment produced).
        if (state.isRetainingText) progress.text += generated?.firstText ?? text;
        else progress.text = "";
      }
      if (json.error !== undefined && json.error !== null) {
        // An error object riding along with choices is passed on, but an upstream's error text may quote the key.
        const data = state.redact(continuation === undefined ? event.data : JSON.stringify(json));
        if (data !== event.data) Object.assign(json, { error: (JSON.parse(data) as { error: unknown }).error });
        event.data = data;
      }
      // Once an upstream's usage of the output went out no estimate will be, so the output need not be counted any more.
      if (usage !== undefined) state.hasPassedUsage = true;
      else if (!state.hasPassedUsage || progress.usage?.completionTokens === 0) state.output?.note(counted);
      if (continuation === undefined) {
        state.streamId ??= typeof json.id === "string" ? json.id : undefined;
        state.lastChunk = json;
        out.push({ data: event.data, json });
      } else {
        // A continuation segment: splice it into the client's stream as part of the first one.
        if (state.streamId !== undefined) json.id = state.streamId;
        if (progress.isFirstOutput) {
          progress.isFirstOutput = false;
          // Beside an estimate mark the chunk may carry (a continuation whose first output is its usage).
          json.x_gateway = {
            ...(isRecord(json.x_gateway) ? json.x_gateway : {}),
            continuation: state.continuations[state.continuations.length - 1] ?? null,
          };
        }
        out.push({ data: JSON.stringify(json), json });
      }
      if (info.isFinal) progress.end("success", "");
      if (failedInPlace !== undefined) {
        // A 429 its error object names is a rate limit (a cooldown, the door's rate_limit_error), as an error event's.
        progress.endAtUpstreamError(failedInPlace, "the upstream failed the stream in place (finish_reason: error)");
      }
      if (progress.outcome !== undefined) break;
    }
    // Read in the batch the segment ended in, never relayed: after its end (an in-band error, a finish, a divergence),
    // or after the segment had ended before the batch (its client left as it came: held events just released). Their
    // usage is the provider's report and their text was generated (before 2026-12-07 only the second kind was counted,
    // and neither's usage: a usage chunk read with an error was dropped, and the segment kept its reservation).
    if (progress.outcome !== undefined) progress.noteUnrelayed(events.slice(index + 1), inspect);
    events.length = 0;
    out.bytes = stream.parser.bytesOf(out);
    return out;
  };
}
