// The stream idle timer (`stream_idle_timeout_ms`). It counts only while the gateway waits for the upstream:
// while the relay waits for a slow client to take what it has (backpressure), the upstream is paused by us and
// its silence is not its fault, so a slow reader never makes a provider look stalled.
import { type RequestTimer, requestTimers } from "../request-timers.ts";
export class IdleWatchdog {
  readonly #timer: RequestTimer;
  #isWaitingForUpstream = false;

  constructor(timeoutMs: number, onIdle: () => void) {
    this.#timer = requestTimers.after(timeoutMs, () => {
      if (this.#isWaitingForUpstream) onIdle();
      // Waiting for the client: look again after another full period (re-armed when we next read upstream).
      else this.#timer.refresh();
    });
  }

  /** Before reading from the upstream: the countdown starts afresh. */
  waitForUpstream(): void {
    this.#isWaitingForUpstream = true;
    this.#timer.refresh();
  }

  /** The upstream delivered; what follows (rendering, the client's backpressure) does not count. */
  pause(): void {
    this.#isWaitingForUpstream = false;
  }

  clear(): void {
    this.#timer.cancel();
  }
}
