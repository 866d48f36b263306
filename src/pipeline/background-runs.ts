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
