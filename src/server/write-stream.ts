// Writing a pipeline stream to a client socket, with backpressure: the next batch is pulled from the pipeline
// only when the socket has taken the last one, so a slow client slows the upstream instead of growing memory.
import type { ServerResponse } from "node:http";
import type { OpenRequests } from "../pipeline/open-requests.ts";
import { type RequestTimer, requestTimers } from "../request-timers.ts";
import type { StreamChunk } from "../streaming/relay-types.ts";
import type { KeepAlive } from "./stream-keepalive.ts";

export const SSE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  connection: "keep-alive",
  "x-accel-buffering": "no",
  // As every other answer (build-server.ts): the stream is written after hijack(), without Fastify's headers.
  "x-content-type-options": "nosniff",
});

/**
 * The SSE response headers for a client whose request said `connection` (the `Connection` header): a client that
 * asked to close the connection gets it closed after the stream, not kept alive.
 */
export function sseHeaders(connection: string | undefined): Readonly<Record<string, string>> {
  const wantsClose = connection !== undefined && /(?:^|,)\s*close\s*(?:,|$)/i.test(connection);
  return wantsClose ? { ...SSE_HEADERS, connection: "close" } : SSE_HEADERS;
}

/** How pumpStream bounds and keeps up a response beside writing its batches. */
export interface PumpOptions {
  /** The producer stopped (AudioAnswer.stopped): a write waiting for a client that reads nothing stops waiting. */
  readonly stopped?: AbortSignal | undefined;
  /** `routing.max_stream_duration_ms`: a client still not taking what was written by then is cut, as gone. */
  readonly maxDurationMs?: number | undefined;
  /** Keep-alives in the silences (`server.stream_keepalive_ms`): told of every write, stopped at the end. */
  readonly keepAlive?: KeepAlive | undefined;
  /**
   * The door's in-stream error for a batch `render` threw on (a bug in its translator): the stream ends with it
   * instead of being cut, as its head and part of its answer are out. If it throws too, the response is cut.
   */
  readonly lastEvent?: ((error: unknown) => string) | undefined;
}

/**
 * Drives `events` to its end (the pipeline settles the request there), writing each batch as `render` says.
 * If `render` or a write throws, the generator is closed (which settles the stream: upstream hung up on, slots
 * freed, record published) and the half-written response is cut, before the error goes on; one `render` threw on
 * ends with `lastEvent` instead, when given (the response is then ended, not destroyed). With `maxDurationMs`, a
 * client still not taking what was written by then is cut, as gone (the relay cannot end the stream itself while
 * nobody pulls, and the request would hold its record and budget reservation).
 */
export async function pumpStream<T, B = readonly StreamChunk[]>(
  response: ServerResponse,
  events: AsyncGenerator<B, T, void>,
  render: (batch: B) => string | Uint8Array,
  options: PumpOptions = {},
): Promise<T> {
  const { stopped, maxDurationMs, keepAlive, lastEvent } = options;
  const deadlineMs = maxDurationMs === undefined ? undefined : Date.now() + maxDurationMs;
  keepAlive?.start();
  let isDone = false;
  let renderFailure: { readonly error: unknown } | undefined;
  try {
    for (;;) {
      const next = await events.next();
      if (next.done === true) {
        isDone = true;
        return next.value;
      }
      // A gone client: keep pulling so the relay notices the abort and settles; nothing is written.
      if (response.destroyed) continue;
      let text: string | Uint8Array;
      try {
        text = render(next.value);
      } catch (error) {
        renderFailure = { error };
        throw error;
      }
      if (text.length === 0) continue;
      keepAlive?.wrote();
      // A response still waiting for its turn on a pipelined connection (no socket yet) holds its writes, but past its
      // highWaterMark (the socket's) write() returns false and `drain` comes once it has the socket and handed it what
      // it held (Node 24 _http_outgoing.js `_writeRaw`, `_flush`): its upstream is not read meanwhile, as for a slow
      // reader (test/e2e/pipelined-requests.test.ts). No wait of our own for its turn is needed.
      if (!response.write(text)) await drained(response, stopped, deadlineMs);
    }
  } finally {
    keepAlive?.stop();
    if (!isDone) {
      // Told before the stream is settled: a door's `lastEvent` may say how it failed (StreamAnswer.failedBy).
      const tail = renderFailure === undefined ? undefined : lastEventOf(lastEvent, renderFailure.error);
      await events.return(undefined as never);
      if (tail === undefined || response.destroyed || response.writableEnded) response.destroy();
      else response.end(tail);
    }
  }
}

/** `lastEvent`'s text for `error`, or undefined when there is none or it threw (the response is then cut). */
function lastEventOf(lastEvent: PumpOptions["lastEvent"], error: unknown): string | undefined {
  try {
    return lastEvent?.(error);
  } catch {
    return undefined;
  }
}

/**
 * Hands what `response` holds to its socket now. Each write corks a response's socket until the next tick (so that
 * the head and the first event, or a chunk's size line and its data, go out in one syscall), and every promise job
 * queued by then runs first: after a stream's first batch, the relay's whole pull of its upstream. Called when the
 * relay has nothing more to write until the upstream sends again (RequestContext.flushWrites), it costs no syscall.
 */
export function flushWrites(response: ServerResponse): void {
  // The socket's cork, not the response's own (`response.writableCorked` counts only `response.cork()`).
  const socket = response.socket;
  if (socket !== null && socket.writableCorked > 0) socket.uncork();
}

/**
 * An AbortSignal that fires when the client goes away before its response is complete, or when the gateway ends
 * every open request at its exit (then aborted with that error: open-requests.ts). `stop` once the pipeline has
 * settled the request (its record published): until then it counts among the open requests an exit waits for.
 */
export function clientGoneSignal(
  response: ServerResponse,
  openRequests: OpenRequests,
): { readonly signal: AbortSignal; stop(): void } {
  const controller = openRequests.open();
  const onClose = (): void => {
    if (!response.writableFinished) controller.abort();
  };
  response.on("close", onClose);
  // A client may have left before the handler got here (while a lazily loaded door's modules were imported,
  // lazy-routes.ts): its response emitted `close` already and will not again, and without this the request was
  // planned and sent upstream for nobody.
  if (response.closed) onClose();
  return {
    signal: controller.signal,
    stop: () => {
      response.off("close", onClose);
      openRequests.close(controller);
    },
  };
}

/**
 * Resolves when the client took the buffered bytes, left, or the producer stopped (`stopped`): a client that reads
 * nothing otherwise holds the writer here forever, and the producer's own bounds (max_stream_duration_ms) are only
 * noticed on its next pull. Past `deadlineMs` the response is destroyed (its `close` ends the wait and tells the
 * pipeline the client is gone). The timer exists only while a write waits, not for every stream.
 */
function drained(response: ServerResponse, stopped: AbortSignal | undefined, deadlineMs?: number): Promise<void> {
  return new Promise((resolve) => {
    let timer: RequestTimer | undefined;
    const done = (): void => {
      response.off("drain", done);
      response.off("close", done);
      stopped?.removeEventListener("abort", done);
      timer?.cancel();
      resolve();
    };
    if (stopped?.aborted === true) {
      resolve();
      return;
    }
    response.on("drain", done);
    response.on("close", done);
    stopped?.addEventListener("abort", done, { once: true });
    if (deadlineMs !== undefined) {
      timer = requestTimers.after(deadlineMs - Date.now(), () => response.destroy());
    }
  });
}
