// The stream idle timer (`stream_idle_timeout_ms`). It counts only while the gateway waits for the upstream:
// while the relay waits for a slow client to take what it has (backpressure), the upstream is paused by us and
// its silence is not its fault, so a slow reader never makes a provider look stalled.
//
// The timer is not re-armed on every chunk (that moves it in Node's timer list each time, a cost per upstream
// chunk): a wait only notes when it started, and when the timer fires early it is set again for what is left.
export class IdleWatchdog {
  readonly #timeoutMs: number;
  readonly #onIdle: () => void;
  #timer: NodeJS.Timeout;
  #isWaitingForUpstream = false;
  /** performance.now() when the current wait for the upstream began. */
  #waitStartedMs = 0;
  #isCleared = false;

  constructor(timeoutMs: number, onIdle: () => void) {
    this.#timeoutMs = timeoutMs;
    this.#onIdle = onIdle;
    this.#timer = setTimeout(() => this.#check(), timeoutMs);
  }

  #check(): void {
    if (this.#isCleared) return;
    // Waiting for the client: look again after another full period.
    if (!this.#isWaitingForUpstream) {
      this.#arm(this.#timeoutMs);
      return;
    }
    const waitedMs = performance.now() - this.#waitStartedMs;
    if (waitedMs >= this.#timeoutMs) this.#onIdle();
    // The wait began after the timer was armed: fire again when this wait reaches the timeout.
    else this.#arm(this.#timeoutMs - waitedMs);
  }

  #arm(delayMs: number): void {
    this.#timer = setTimeout(() => this.#check(), Math.max(1, Math.ceil(delayMs)));
  }

  /** Before reading from the upstream, with performance.now(): the countdown starts afresh. */
  waitForUpstream(nowMs: number): void {
    this.#isWaitingForUpstream = true;
    this.#waitStartedMs = nowMs;
  }

  /** The upstream delivered; what follows (rendering, the client's backpressure) does not count. */
  pause(): void {
    this.#isWaitingForUpstream = false;
  }

  clear(): void {
    this.#isCleared = true;
    clearTimeout(this.#timer);
  }
}
