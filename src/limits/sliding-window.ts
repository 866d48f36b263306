// One sliding window's charges (requests and tokens), in bounded memory and O(1) amortised time per charge or
// check, whatever the limit and the request rate.
//
// Charges are kept as runs ordered by the time they leave the window, with running totals, so a check reads two
// numbers and an expiry pops from the head (each run is pushed and popped once). While the window holds fewer
// than MAX_EXACT_RUNS runs, every charge is a run of its own: the window is an exact sliding log, and a charge
// made at t counts until exactly t + windowMs. Beyond that, a charge made within windowMs / MAX_EXACT_RUNS of the
// newest run's first charge joins that run, and a run counts until its LAST charge leaves. That is conservative:
// each charge counts for at least its full window (never less than the provider's own window would count it),
// at most 1/MAX_EXACT_RUNS of a window longer, and only under enough traffic to fill MAX_EXACT_RUNS runs. Runs
// then start at least that far apart, so a window never holds more than 2 × MAX_EXACT_RUNS + 1 of them.
//
// The Redis reserve script (src/state/redis-lua.ts) implements the same runs, so both give the same verdicts.

/** Runs a window holds before charges start joining the newest run (also the merge granularity: windowMs / this). */
export const MAX_EXACT_RUNS = 64;

export interface SlidingRun {
  firstMs: number;
  /** The run leaves the window at lastMs + windowMs. */
  lastMs: number;
  requests: number;
  tokens: number;
  isExpired: boolean;
}

/** A run as persisted: [firstMs, lastMs, requests, tokens]. */
export type PersistedRun = readonly [number, number, number, number];

export class SlidingWindow {
  readonly windowMs: number;
  #runs: SlidingRun[] = [];
  #requests = 0;
  #tokens = 0;
  /** Runs visited (pushed, merged, popped, scanned) since creation: what a test counts to show constant cost. */
  #work = 0;

  constructor(windowMs: number) {
    this.windowMs = windowMs;
  }

  /** Drops the runs that left the window by `nowMs`. Amortised O(1): each run is popped once. */
  expire(nowMs: number): void {
    const runs = this.#runs;
    let drop = 0;
    while (drop < runs.length) {
      const run = runs[drop] as SlidingRun;
      if (run.lastMs + this.windowMs > nowMs) break;
      run.isExpired = true;
      this.#requests -= run.requests;
      this.#tokens -= run.tokens;
      drop++;
    }
    if (drop > 0) {
      this.#work += drop;
      runs.splice(0, drop);
    }
  }

  /** Requests counted in the window (call `expire(now)` first). */
  get requests(): number {
    return this.#requests;
  }

  /** Tokens counted in the window (call `expire(now)` first). */
  get tokens(): number {
    return this.#tokens;
  }

  /** Runs held: bounded by 2 × MAX_EXACT_RUNS + 1 however many charges the window counts. */
  get runCount(): number {
    return this.#runs.length;
  }

  get work(): number {
    return this.#work;
  }

  /** When the oldest run leaves, or undefined if the window is empty. */
  get oldestLeavesAtMs(): number | undefined {
    const oldest = this.#runs[0];
    return oldest === undefined ? undefined : oldest.lastMs + this.windowMs;
  }

  /**
   * Counts a charge made at `atMs` (normally now; earlier for a replay). Returns the run it went into, or
   * undefined when the charge has already left the window. Call `expire(nowMs)` first.
   */
  charge(atMs: number, tokens: number, nowMs: number, requests = 1): SlidingRun | undefined {
    if (atMs + this.windowMs <= nowMs) return undefined;
    const runs = this.#runs;
    this.#requests += requests;
    this.#tokens += tokens;
    this.#work += 1;
    const newest = runs[runs.length - 1];
    if (
      newest !== undefined &&
      runs.length >= MAX_EXACT_RUNS &&
      atMs - newest.firstMs < this.windowMs / MAX_EXACT_RUNS
    ) {
      newest.requests += requests;
      newest.tokens += tokens;
      newest.firstMs = Math.min(newest.firstMs, atMs);
      newest.lastMs = Math.max(newest.lastMs, atMs);
      return newest;
    }
    const run: SlidingRun = { firstMs: atMs, lastMs: atMs, requests, tokens, isExpired: false };
    // Ordered by leaving time; a charge older than the newest run (a replay, a clock step back) is rare.
    let index = runs.length;
    while (index > 0 && (runs[index - 1] as SlidingRun).lastMs > atMs) {
      index--;
      this.#work += 1;
    }
    if (index === runs.length) runs.push(run);
    else runs.splice(index, 0, run);
    return run;
  }

  /**
   * A charge's request was sent at `atMs`, later than it was charged (a new connection, a TLS handshake, a shared
   * ledger's round trip came between): its run now counts until `atMs + windowMs`, as the provider, which counts
   * the request when it arrives, does. Other charges in the run move with it (counted a little longer: never
   * less than the provider would). A run that already left the window is charged anew. Returns the run the
   * charge now counts in. O(runs) at worst, which is bounded; the run is nearly always the newest.
   */
  retime(run: SlidingRun, tokens: number, atMs: number, nowMs: number, requests = 1): SlidingRun | undefined {
    if (run.isExpired) return this.charge(atMs, tokens, nowMs, requests);
    if (atMs <= run.lastMs) return run;
    run.lastMs = atMs;
    // Keep the runs ordered by leaving time: move it past those that now leave before it.
    const runs = this.#runs;
    let index = runs.lastIndexOf(run);
    while (index >= 0 && index + 1 < runs.length && (runs[index + 1] as SlidingRun).lastMs < atMs) {
      runs[index] = runs[index + 1] as SlidingRun;
      runs[index + 1] = run;
      index++;
      this.#work += 1;
    }
    return run;
  }

  /** Moves a run's token count by `delta`, and its request count by `requestDelta` (each floored at 0), if it still counts. */
  adjust(run: SlidingRun, delta: number, requestDelta = 0): void {
    if (run.isExpired) return;
    const tokens = Math.max(0, run.tokens + delta);
    this.#tokens += tokens - run.tokens;
    run.tokens = tokens;
    if (requestDelta === 0) return;
    const requests = Math.max(0, run.requests + requestDelta);
    this.#requests += requests - run.requests;
    run.requests = requests;
  }

  /**
   * The earliest instant at which enough runs have left for `amount` more to fit under `limit`, given `used`
   * now. O(runs), which is bounded; only a denial asks.
   */
  retryAtMs(isRequests: boolean, used: number, amount: number, limit: number, nowMs: number): number {
    let remaining = used;
    for (const run of this.#runs) {
      this.#work += 1;
      remaining -= isRequests ? run.requests : run.tokens;
      if (remaining + amount <= limit) return run.lastMs + this.windowMs;
    }
    return nowMs + this.windowMs;
  }

  export(): PersistedRun[] {
    return this.#runs.map((run) => [run.firstMs, run.lastMs, run.requests, run.tokens] as const);
  }

  /** Restores persisted runs (assumed ordered as exported). */
  static fromRuns(windowMs: number, runs: readonly PersistedRun[]): SlidingWindow {
    const window = new SlidingWindow(windowMs);
    for (const [firstMs, lastMs, requests, tokens] of runs) {
      window.#runs.push({ firstMs, lastMs, requests, tokens, isExpired: false });
      window.#requests += requests;
      window.#tokens += tokens;
    }
    window.#runs.sort((left, right) => left.lastMs - right.lastMs);
    return window;
  }
}
