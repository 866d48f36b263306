// `routing.queue_timeout_ms`: when every candidate is over budget or cooling down, a request may wait for the
// first one to free up instead of getting a 429 at once. Waiters are served in arrival order (each waits for
// the one before it to be served or give up) and their number is bounded (`routing.max_queued`).

import { abortableSleep } from "./abortable-sleep.ts";

export class WaitQueue {
  #waiting = 0;
  #tail: Promise<void> = Promise.resolve();

  get size(): number {
    return this.#waiting;
  }

  /**
   * Waits until `tryNow()` returns a value, the deadline passes or the signal aborts; returns undefined when
   * the queue is full or the wait ran out. `tryNow` returns a value to proceed, or how long to sleep (ms).
   */
  async wait<T>(
    maxQueued: number,
    timeoutMs: number,
    signal: AbortSignal,
    tryNow: () => { value: T } | { retryInMs: number },
  ): Promise<T | undefined> {
    if (this.#waiting >= maxQueued) return undefined;
    this.#waiting++;
    const deadlineMs = Date.now() + timeoutMs;
    const previous = this.#tail;
    let release: () => void = () => {};
    this.#tail = new Promise((resolve) => {
      release = resolve;
    });
    try {
      const isOurTurn = await raceDeadline(previous, deadlineMs, signal);
      // Out of time (or the client left) before our turn came: taking a free slot now would jump the queue.
      // (Checked by what ended the race, not by the clock: a timer may fire a millisecond before Date.now()
      // reaches the deadline.)
      if (!isOurTurn || signal.aborted) return undefined;
      for (;;) {
        const attempt = tryNow();
        if ("value" in attempt) return attempt.value;
        const leftMs = deadlineMs - Date.now();
        if (leftMs <= 0 || signal.aborted) return undefined;
        await abortableSleep(Math.max(1, Math.min(attempt.retryInMs, leftMs)), signal);
      }
    } finally {
      this.#waiting--;
      // Keep arrival order even when this waiter gives up before its turn: the next one still waits for ours.
      // The next waiter looks only after a macrotask: the value we return is a plan whose slot its caller
      // reserves a few microtasks later; a next waiter looking sooner would see that slot free and take it.
      void previous.then(() => setImmediate(release));
    }
  }
}

/** Resolves true when `promise` settled first (our turn), false on the deadline or an abort. */
function raceDeadline(promise: Promise<void>, deadlineMs: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(false), Math.max(0, deadlineMs - Date.now()));
    const onAbort = (): void => done(false);
    function done(isTurn: boolean): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve(isTurn);
    }
    signal.addEventListener("abort", onAbort, { once: true });
    void promise.then(() => done(true));
  });
}
