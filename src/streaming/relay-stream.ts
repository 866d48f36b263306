// Relays an opened upstream stream to the client, event by event, as it arrives.
//
// Hazards handled here (each is a test):
// - Backpressure: when the client's socket buffer is full we stop reading upstream until 'drain', so a slow
//   client never makes the gateway buffer a whole answer in memory.
// - Client gone: the upstream request is aborted at once (no leaked socket, no tokens spent for nobody).
// - Cut, stall (`stream_idle_timeout_ms` of silence), an in-band error event, too many malformed events, or
//   the duration cap: never passed off as a normal end. The client gets one final
//   `data: {"error":{...}}` event and no `[DONE]` (docs/streaming.md).
// - A stream that closes cleanly after a finish_reason but without `[DONE]` is finalised at once with `[DONE]`.
import type { ServerResponse } from "node:http";
import type { GatewayError } from "../errors/gateway-error.ts";
import { StreamInterruptedError, UpstreamTimeoutError } from "../errors/gateway-error.ts";
import { renderError } from "../errors/render-error.ts";
import type { OpenedStream } from "./open-stream.ts";
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
}

export interface RelayOptions {
  readonly maxDurationMs: number;
  /** Malformed events tolerated (skipped and reported) before the stream counts as broken. */
  readonly maxMalformedEvents: number;
  /** Strip usage-only chunks (the gateway asked for usage, the client did not). */
  readonly shouldStripUsage: boolean;
  onMalformedEvent?(data: string): void;
}

export async function relayStream(
  stream: OpenedStream,
  response: ServerResponse,
  options: RelayOptions,
): Promise<RelayResult> {
  let end: RelayEnd | undefined;
  let reason = "";
  let usage: RelayResult["usage"];
  let finishReason: string | undefined;
  let malformedEvents = 0;
  const textParts: string[] = [];

  const abortUpstream = (why: RelayEnd, text: string): void => {
    if (end === undefined) {
      end = why;
      reason = text;
    }
    stream.controller.abort();
  };
  const onClientClose = (): void => {
    if (!response.writableFinished) abortUpstream("client_aborted", "client disconnected");
  };
  response.on("close", onClientClose);
  const idleTimer = setTimeout(
    () => abortUpstream("stalled", `no data for stream_idle_timeout_ms (${stream.streamIdleTimeoutMs} ms)`),
    stream.streamIdleTimeoutMs,
  );
  const durationTimer = setTimeout(
    () => abortUpstream("too_long", `the stream exceeded max_stream_duration_ms (${options.maxDurationMs} ms)`),
    options.maxDurationMs,
  );

  /** Turns parsed events into output; sets `end` when the stream is finished or broken. */
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
      if (info.usage !== undefined) usage = info.usage;
      if (info.finishReason !== undefined) finishReason = info.finishReason;
      if (info.text !== "") textParts.push(info.text);
      if (options.shouldStripUsage && info.usage !== undefined && !info.hasContent && isUsageOnly(info.json)) continue;
      out += sseData(event.data);
    }
    events.length = 0;
    return out;
  };

  try {
    const first = render(stream.pendingEvents);
    if (first !== "" && !response.write(first)) await drained(response);
    while (end === undefined) {
      const next = await stream.iterator.next();
      if (next.done) {
        const finish = stream.parser.finish();
        const tail = render(stream.pendingEvents);
        if (tail !== "" && !response.destroyed) response.write(tail);
        if (end === undefined) {
          if (finishReason !== undefined && !finish.hadPartialEvent) end = "finished_without_done";
          else {
            end = "cut";
            reason = "the upstream closed the stream before it finished";
          }
        }
        break;
      }
      idleTimer.refresh();
      stream.parser.push(next.value);
      const out = render(stream.pendingEvents);
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

  const isSuccess = end === "done" || end === "finished_without_done";
  if (end === "done") {
    // Do not wait for the upstream to close after [DONE]; if it lingers, cut it loose.
    void drainQuietly(stream);
  } else {
    // An error event or too many malformed events stop the relay while the upstream response may still be
    // open (providers often keep it so after an error): hang up, or the socket and its tokens leak.
    // A no-op when the body already ended or the request was aborted.
    stream.controller.abort();
  }
  if (!response.destroyed) {
    if (isSuccess) response.end(SSE_DONE);
    else if (end !== "client_aborted") response.end(sseData(renderError(streamError(end, reason))));
  }
  return { end, isSuccess, reason, usage, deliveredText: textParts.join(""), malformedEvents };
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
