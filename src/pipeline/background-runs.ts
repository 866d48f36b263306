// The background requests this process is running (a Responses request with `background: true`): each with the
// controller of its pipeline's signal (a cancel aborts it; it is also among the open requests, so an exit ends it
// like any other request), the stream events it produced so far (a client that reconnects replays and follows
// them) and a promise that settles once its final state is kept. Protocol-neutral: events are opaque SSE texts.

/** Why a background run was aborted by a cancel (not by its client, which it does not have, nor by the exit). */
export class BackgroundCancel extends Error {
  constructor() {
    // The attempt's reason in the request record (abortReasonText).
    super("background response cancelled (POST /v1/responses/{id}/cancel)");
    this.name = "BackgroundCancel";
  }
}

interface Run {
  readonly controller: AbortController;
  readonly events: string[];
  isEnded: boolean;
  readonly wake: Set<() => void>;
  readonly done: Promise<void>;
  readonly settle: () => void;
}

export class BackgroundRuns {
  readonly #runs = new Map<string, Run>();

  /** A run begins under `id`; its signal is `controller`'s. */
  start(id: string, controller: AbortController): void {
    let settle = (): void => {};
    const done = new Promise<void>((resolve) => {
      settle = resolve;
    });
    this.#runs.set(id, { controller, events: [], isEnded: false, wake: new Set(), done, settle });
  }

  has(id: string): boolean {
    return this.#runs.has(id);
  }

  get size(): number {
    return this.#runs.size;
  }

  /** The events produced so far, from index `from` on (a copy), for keeping them beside the response. */
  events(id: string, from = 0): readonly string[] {
    return this.#runs.get(id)?.events.slice(from) ?? [];
  }

  append(id: string, event: string): void {
    const run = this.#runs.get(id);
    if (run === undefined || run.isEnded) return;
    run.events.push(event);
    for (const wake of run.wake) wake();
  }

  /** No more events: followers end after the last one. */
  endEvents(id: string): void {
    const run = this.#runs.get(id);
    if (run === undefined) return;
    run.isEnded = true;
    for (const wake of run.wake) wake();
  }

  /** The run's final state is kept: it is no longer this process's to cancel or follow. */
  finish(id: string): void {
    const run = this.#runs.get(id);
    if (run === undefined) return;
    this.endEvents(id);
    this.#runs.delete(id);
    run.settle();
  }

  /** Aborts the run with a cancel; resolves once its final (cancelled) state is kept. False when it is not here. */
  async cancel(id: string): Promise<boolean> {
    const run = this.#runs.get(id);
    if (run === undefined) return false;
    run.controller.abort(new BackgroundCancel());
    await run.done;
    return true;
  }

  /** Resolves once every run started so far is finished (the exit's grace bounds the wait). */
  async settled(): Promise<void> {
    await Promise.all([...this.#runs.values()].map((run) => run.done));
  }

  /**
   * The run's events from index `from` on, as they come, until it ends or `signal` aborts (the reader left).
   * Undefined when the run is not in this process.
   */
  follow(id: string, from: number, signal: AbortSignal): AsyncGenerator<string> | undefined {
    const run = this.#runs.get(id);
    if (run === undefined) return undefined;
    return followRun(run, from, signal);
  }
}

async function* followRun(run: Run, from: number, signal: AbortSignal): AsyncGenerator<string> {
  let next = Math.max(0, from);
  for (;;) {
    while (next < run.events.length) {
      const event = run.events[next];
      next += 1;
      if (event !== undefined) yield event;
    }
    if (run.isEnded || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const wake = (): void => {
        run.wake.delete(wake);
        signal.removeEventListener("abort", wake);
        resolve();
      };
      run.wake.add(wake);
      signal.addEventListener("abort", wake, { once: true });
    });
  }
}

/**
 * The writes of one run's kept state, one after the other: a heartbeat never lands after the final state, and each
 * write compares against what the one before it wrote. At most one heartbeat waits in the chain: while the store is
 * slow (Redis hung: each write waits out its command timeout, and a lost reply up to 3 s more for the row read again;
 * the state file locked: 2 s) a heartbeat is due every second, and one queued per second piled up ahead of the final
 * state, which then waited for them all. A heartbeat already waiting writes the newest state when its turn comes
 * (it reads the events then), so the ones skipped lose nothing; once the final state is queued, none is written.
 */
export class RunStateWrites {
  #chain: Promise<void> = Promise.resolve();
  #isBeatWaiting = false;
  readonly #onError: (error: unknown) => void;

  /** `onError`: a write that threw (the store failed); the chain goes on with the next one. */
  constructor(onError: (error: unknown) => void) {
    this.#onError = onError;
  }

  /** Runs `write` after every write enqueued before it; resolves once it settled (never rejects). */
  enqueue(write: () => Promise<void>): Promise<void> {
    this.#chain = this.#chain.then(write).catch(this.#onError);
    return this.#chain;
  }

  /** A heartbeat's write, unless one is already waiting for its turn (then that one is it). */
  enqueueBeat(beat: () => Promise<void>): void {
    if (this.#isBeatWaiting || this.#isFinalQueued) return;
    this.#isBeatWaiting = true;
    void this.enqueue(() => {
      this.#isBeatWaiting = false;
      // The final state supersedes it (it writes every event and compares against the last write that landed): a
      // heartbeat still waiting when the run ended only held the final state back by one more write (under a slow
      // store: a command timeout, and up to 3 s more for a lost reply's outcome).
      return this.#isFinalQueued ? Promise.resolve() : beat();
    });
  }

  /** The final state's write: after the write in flight, ahead of a heartbeat still waiting (which is dropped). */
  enqueueFinal(write: () => Promise<void>): Promise<void> {
    this.#isFinalQueued = true;
    return this.enqueue(write);
  }

  #isFinalQueued = false;
}
