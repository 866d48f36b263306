// What the relay does with an upstream once the client's answer is whole: the short wait for its usage after the
// protocol door ended the answer itself (AnswerEndGrace), and letting go of it after its own end (drainQuietly).
import type { StreamOutcome } from "../errors/outcomes.ts";
import { type RequestTimer, requestTimers } from "../request-timers.ts";
import type { RelaySegment } from "./relay-types.ts";
import type { SegmentProgress } from "./segment-progress.ts";

/**
 * How long the relay waits for the provider's usage once the door ended the answer (a stop sequence the Messages door
 * matched, which the provider was not told of). A provider that is done sends its usage chunk right after its last
 * token, within a few ms; one still generating past the sequence would hold the client (up to
 * `stream_idle_timeout_ms` when it stalls) and bill for text nobody sees. So the first chunk with usage read after the
 * stop point ends the wait, and after 1 s the upstream is hung up on and the segment charged the last count read, else
 * its estimate (docs/protocols.md). A running count read before (a provider reporting usage on every chunk) does not
 * end it: it predates what the provider generated past the sequence, and ended the grace at once, charging it. Nor does
 * a usage-only chunk with text relayed after it (SegmentProgress.hasFinalUsage). A count charged at the grace's end has
 * the output read after it added, counted (SegmentProgress.settledUsage).
 */
export const ANSWER_END_GRACE_MS = 1000;

export class AnswerEndGrace {
  #timer: RequestTimer | undefined;
  #isStarted = false;

  /**
   * The door ended the answer (seen after the batch it ended in was taken): the provider's last report already read
   * ends the segment now, else the next usage to come within the grace does (the renderer,
   * SegmentProgress.isPastAnswerEnd), else `stop` at its end, the last running count read (if any) charged.
   */
  start(progress: SegmentProgress, stop: (outcome: StreamOutcome, reason: string) => void): void {
    if (this.#isStarted) return;
    this.#isStarted = true;
    progress.isPastAnswerEnd = true;
    if (progress.hasFinalUsage) progress.end("success", "");
    else this.#timer = requestTimers.after(ANSWER_END_GRACE_MS, () => stop("success", ""));
  }

  clear(): void {
    this.#timer?.cancel();
  }
}

/** After `[DONE]` (or another whole end): read on quietly, so the connection may be reused; cut it loose after 1 s. */
export async function drainQuietly(segment: RelaySegment): Promise<void> {
  const stream = segment.stream;
  const timer = requestTimers.after(1000, () => stream.controller.abort());
  try {
    for (;;) {
      const next = await stream.iterator.next();
      if (next.done) break;
    }
  } catch {
    // aborted or reset after [DONE]: nothing left to deliver
  } finally {
    timer.cancel();
  }
}
