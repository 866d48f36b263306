// Relaying an audio answer's bytes as they come (text to speech): the upstream body is read only as fast as the
// client takes it (the caller pulls the next chunk once the last was written), the client leaving hangs up on the
// upstream, and the idle (`stream_idle_timeout_ms`) and duration (`max_stream_duration_ms`) bounds apply as they
// do to an event stream. Once the first byte is sent there is no failover: a break ends the response as a cut.
import type { StreamOutcome } from "../errors/outcomes.ts";
import { type RequestTimer, requestTimers } from "../request-timers.ts";
import { IdleWatchdog } from "./idle-watchdog.ts";

/** An upstream audio body that has produced its first bytes and is ready to be relayed (upstream/audio-attempt.ts). */
export interface OpenedAudio {
  readonly iterator: AsyncIterator<Uint8Array>;
  /** Bytes read before the answer was committed to (the first chunk, or a held start sniffed for a JSON error). */
  readonly heldChunks: readonly Uint8Array[];
  /** The provider's content type (`audio/mpeg`), or `application/octet-stream` when it named none. */
  readonly contentType: string;
  /**
   * The provider's `content-encoding` (`gzip`), passed on with the bytes, which are relayed as they came: without it
   * the client would take compressed bytes for the audio itself. Undefined when none.
   */
  readonly contentEncoding?: string | undefined;
  /** Aborts the upstream request (client gone, stall, duration cap). */
  readonly controller: AbortController;
  readonly streamIdleTimeoutMs: number;
  readonly startedAtMs: number;
}

export interface AudioRelayOptions {
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
  readonly maxDurationMs: number;
}

/** How an audio relay ended, with what it delivered. */
export interface AudioRelayEnd {
  readonly outcome: Extract<
    StreamOutcome,
    "success" | "client_aborted" | "stream_cut" | "stream_stalled" | "stream_too_long"
  >;
  readonly reason: string;
  readonly deliveredBytes: number;
}

/**
 * Yields the audio's chunks in order, the held ones first; returns how it ended. The caller writes each chunk before
 * pulling the next (backpressure); closing the generator early hangs up on the upstream.
 */
export async function* relayAudio(
  opened: OpenedAudio,
  options: AudioRelayOptions,
): AsyncGenerator<Uint8Array, AudioRelayEnd, void> {
  let deliveredBytes = 0;
  let stop: { outcome: AudioRelayEnd["outcome"]; reason: string } | undefined;
  const end = (outcome: AudioRelayEnd["outcome"], reason: string): void => {
    stop ??= { outcome, reason };
    opened.controller.abort();
  };
  const idle = new IdleWatchdog(opened.streamIdleTimeoutMs, () =>
    end("stream_stalled", `no data for stream_idle_timeout_ms (${opened.streamIdleTimeoutMs} ms)`),
  );
  // Suspended at a yield: the consumer writes a chunk before pulling the next, so a timer firing meanwhile finds it
  // waiting for a client that takes nothing (its socket's buffers full).
  let isWaitingOnClient = false;
  const durationTimer = requestTimers.after(options.maxDurationMs, () => {
    // A client that read nothing holds the relay: the provider, which answered, is not blamed (as a stream's
    // segment-progress.ts deadlineEnd; until 2026-12-07 such audio was recorded stream_too_long against it).
    if (isWaitingOnClient) {
      end(
        "client_aborted",
        `the client read nothing while max_stream_duration_ms (${options.maxDurationMs} ms) ran out`,
      );
    } else end("stream_too_long", `the stream ran past max_stream_duration_ms (${options.maxDurationMs} ms)`);
  });
  const onClientGone = (): void => end("client_aborted", "the client closed the connection");
  if (options.signal.aborted) onClientGone();
  else options.signal.addEventListener("abort", onClientGone, { once: true });
  let isFinished = false;
  try {
    for (const chunk of opened.heldChunks) {
      if (stop !== undefined) break;
      idle.pause();
      deliveredBytes += chunk.byteLength;
      isWaitingOnClient = true;
      yield chunk;
      isWaitingOnClient = false;
    }
    while (stop === undefined) {
      idle.waitForUpstream();
      let next: IteratorResult<Uint8Array>;
      try {
        next = await opened.iterator.next();
      } catch (error) {
        end("stream_cut", `the upstream body broke after ${deliveredBytes} bytes: ${errorText(error)}`);
        break;
      }
      idle.pause();
      if (next.done === true) {
        isFinished = true;
        break;
      }
      if (stop !== undefined) break;
      if (next.value.byteLength === 0) continue;
      deliveredBytes += next.value.byteLength;
      isWaitingOnClient = true;
      yield next.value;
      isWaitingOnClient = false;
    }
  } finally {
    idle.clear();
    durationTimer.cancel();
    options.signal.removeEventListener("abort", onClientGone);
    // Closed early by the consumer (the response could not be written): the upstream is hung up on.
    if (!isFinished && stop === undefined) end("client_aborted", "the response could not be written");
  }
  if (isFinished && stop === undefined) return { outcome: "success", reason: "ok", deliveredBytes };
  const ended = stop ?? { outcome: "stream_cut" as const, reason: "the upstream body ended early" };
  return { ...ended, deliveredBytes };
}

/**
 * The next chunk of a body not yet committed to, within `idleMs`: undefined at its end. Rejects on a broken body and
 * with `IdleTimeoutError` (aborting `controller`) when nothing came in time.
 */
export async function nextChunkWithin(
  iterator: AsyncIterator<Uint8Array>,
  idleMs: number,
  controller: AbortController,
): Promise<Uint8Array | undefined> {
  let timer: RequestTimer | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = requestTimers.after(idleMs, () => {
      const error = new IdleTimeoutError(idleMs);
      reject(error);
      controller.abort(error);
    });
  });
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), timeout]);
      if (next.done === true) return undefined;
      if (next.value.byteLength > 0) return next.value;
    }
  } finally {
    timer?.cancel();
  }
}

export class IdleTimeoutError extends Error {
  constructor(idleMs: number) {
    super(`no data for stream_idle_timeout_ms (${idleMs} ms)`);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
