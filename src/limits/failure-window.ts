// Verdicts (successes and failures) of one deployment over the last `failure_window_ms`, for the circuit breaker's
// failure-rate rule (docs/routing.md "Recovery"). A success does not erase the failures before it here: a provider
// failing every other request must be seen failing half of them. Fixed memory and O(1) per verdict: the window is
// BUCKETS sub-buckets of a tenth of it each, and a bucket is reused once it is older than the window, so the counts
// cover between nine tenths of the window and all of it. Pure: the caller passes the time.

/** Sub-buckets per window: the window forgets in steps of windowMs / BUCKETS. */
const BUCKETS = 10;

export interface WindowCounts {
  /** Verdicts in the window: successes and failures (what says whether the upstream works). */
  readonly attempts: number;
  readonly failures: number;
}

const EMPTY: WindowCounts = Object.freeze({ attempts: 0, failures: 0 });

export class FailureWindow {
  /** Width of a bucket the counts were made with; another window (a reload changed it) starts afresh. */
  #bucketMs = 0;
  /** Bucket number (time / bucketMs, floored) each slot counts, or -Infinity for a slot unused (or cleared). */
  readonly #epochs = new Float64Array(BUCKETS).fill(Number.NEGATIVE_INFINITY);
  readonly #attempts = new Uint32Array(BUCKETS);
  readonly #failures = new Uint32Array(BUCKETS);

  add(nowMs: number, windowMs: number, isFailure: boolean): void {
    this.#fit(windowMs);
    const epoch = Math.floor(nowMs / this.#bucketMs);
    const slot = epoch % BUCKETS;
    if (this.#epochs[slot] !== epoch) {
      this.#epochs[slot] = epoch;
      this.#attempts[slot] = 0;
      this.#failures[slot] = 0;
    }
    this.#attempts[slot] = (this.#attempts[slot] ?? 0) + 1;
    if (isFailure) this.#failures[slot] = (this.#failures[slot] ?? 0) + 1;
  }

  /**
   * Turns a success counted at or after `sinceMs` into a failure, if one is still in the window: a stream counted a
   * success when it opened, and a cut later is the same request's verdict changing, not a second request (one cut in
   * three streams is a third failing, not a quarter). False when none is left (the window moved on, or a probe's
   * success cleared it): the caller then counts the failure as a verdict of its own.
   */
  failSuccessSince(sinceMs: number, nowMs: number, windowMs: number): boolean {
    if (this.#bucketMs !== bucketWidthMs(windowMs)) return false;
    const now = Math.floor(nowMs / this.#bucketMs);
    const since = Math.max(Math.floor(sinceMs / this.#bucketMs), now - BUCKETS + 1);
    for (let epoch = since; epoch <= now; epoch++) {
      const slot = epoch % BUCKETS;
      if (this.#epochs[slot] !== epoch) continue;
      const attempts = this.#attempts[slot] ?? 0;
      const failures = this.#failures[slot] ?? 0;
      if (attempts > failures) {
        this.#failures[slot] = failures + 1;
        return true;
      }
    }
    return false;
  }

  counts(nowMs: number, windowMs: number): WindowCounts {
    if (this.#bucketMs !== bucketWidthMs(windowMs)) return EMPTY;
    const epoch = Math.floor(nowMs / this.#bucketMs);
    let attempts = 0;
    let failures = 0;
    for (let slot = 0; slot < BUCKETS; slot++) {
      const slotEpoch = this.#epochs[slot] ?? Number.NEGATIVE_INFINITY;
      // A slot from the future (the clock went back) is ignored like one that left the window.
      if (slotEpoch <= epoch - BUCKETS || slotEpoch > epoch) continue;
      attempts += this.#attempts[slot] ?? 0;
      failures += this.#failures[slot] ?? 0;
    }
    return attempts === 0 ? EMPTY : { attempts, failures };
  }

  /** Forgets every verdict (a successful probe closed the circuit: what came before is the outage's). */
  clear(): void {
    this.#epochs.fill(Number.NEGATIVE_INFINITY);
  }

  #fit(windowMs: number): void {
    const bucketMs = bucketWidthMs(windowMs);
    if (bucketMs === this.#bucketMs) return;
    this.#bucketMs = bucketMs;
    this.clear();
  }
}

function bucketWidthMs(windowMs: number): number {
  return Math.max(1, Math.ceil(windowMs / BUCKETS));
}
