// Runs the gateway's own batches (`/v1/batches`): each line of an input file goes through the one pipeline as the
// matching front door's request would (plan, budgets, failover, one record, marked with the batch id), at most
// `batches.concurrency` lines at once across all batches.
//
// Pacing: a line that no candidate can serve now only because of limits (every candidate over a budget, cooling down;
// planned with its prompt's estimate and `max_tokens` as its pipeline plans it) is not failed: it waits until the
// soonest candidate frees (what the plan and the limits know), without sending anything and without its slot (the
// batch's lines for the same model wait with it, untried), then tries again; so does a line whose own pipeline finds
// that room taken since this check (a live request, another replica: a 429 without a record, handle-request.ts
// deferredLine); an upstream 429 from every candidate waits its retry time the same way, and so does a 5xx from every
// candidate before its next try (that line alone: the others for its model are tried meanwhile). A line never waits in the live route queue either (plan-request.ts answers it at
// once, with the time to wait). A line refused for good (a 4xx, no model) goes to the error file. Live traffic first:
// while any live request waits in the route queue (`routing.queue_timeout_ms`), no batch line starts (none holds a slot
// meanwhile), so a batch never takes the budget a live request is waiting for. Each finished line's result is written
// before it counts: after a restart a batch resumes with the lines not written, and no written line runs again. A
// result the store refuses is kept and written again (batch-results.ts): no line starts meanwhile, and the batch does not end
// before it is written. Shared books (Redis): a batch is run by the replica holding its lease (taken with SET NX PX,
// renewed while it runs); each replica looks for unfinished batches every third of `batches.lease_ms` and takes over
// one whose lease lapsed (its runner died), from the lines not written (and at once when another replica announces a
// new batch or a lease it gave up: redis-batch-rows.ts `onRunnable`); a line in flight when that runner died runs twice
// at most, and its result is kept once. A cancel or the window's end is seen through the batch's status, read again at
// each of those looks and after each line.
//
// Here: the runner's own state (batches running, slots, leases, timers) and the start of lines (#pump). Its steps, over
// one ActiveBatch per batch (active-batch.ts): taking a batch (batch-activation.ts), which line next (batch-line-order.ts),
// one try of a line (batch-line-run.ts, batch-lines.ts), its result (batch-results.ts), the batch's end (batch-end.ts).
import { InternalError } from "../errors/gateway-error.ts";
import type { Logger } from "../logger.ts";
import { type BatchEndpoint, type BatchObject, isFinished } from "../protocols/batches/batch-objects.ts";
import { randomIds } from "../protocols/ids.ts";
import { type ActiveBatch, type BatchSteps, dropWork } from "./active-batch.ts";
import { BatchActivator } from "./batch-activation.ts";
import type { BatchBooks } from "./batch-books.ts";
import { endStatus, finishBatch } from "./batch-end.ts";
import { LineOrder } from "./batch-line-order.ts";
import { LineRuns } from "./batch-line-run.ts";
import type { LineExecutor } from "./batch-lines.ts";
import { BatchResults } from "./batch-results.ts";
import type { GatewayRuntime } from "./gateway-runtime.ts";

/** ms between checks of running batches' windows (`completion_window`) and of their status (a cancel elsewhere). */
const EXPIRY_CHECK_MS = 1_000;
/** Tries of a compare-and-set write of a batch that others keep changing (a cancel, a count update) before it gives up. */
const MAX_WRITE_TRIES = 10;
/** ms before a batch whose end the store refused is taken again (#finishAgainLater). */
const FINISH_RETRY_MS = 1_000;

export class BatchRunner {
  readonly #runtime: GatewayRuntime;
  readonly #books: BatchBooks;
  readonly #log: Logger;
  /** What the steps in modules of their own use of this runner (BatchSteps). */
  readonly #steps: BatchSteps;
  readonly #activator: BatchActivator;
  readonly #results: BatchResults;
  readonly #lines: LineRuns;
  readonly #order: LineOrder;
  readonly #active = new Map<string, ActiveBatch>();
  readonly #settling = new Set<Promise<void>>();
  readonly #closing = new AbortController();
  /** Batches being taken (lease, input read): not taken twice by two polls. */
  readonly #starting = new Set<string>();
  /** Batches whose end is being written here: a poll meanwhile (still unfinished in the books) must not run them again. */
  readonly #finishing = new Set<string>();
  /** This process's name on the leases it holds. */
  readonly #holder = randomIds("runner_");
  #inFlight = 0;
  #expiryTimer: NodeJS.Timeout | undefined;
  #leaseTimer: NodeJS.Timeout | undefined;
  #isStepFailing = false;
  #leaseMsAtStart: number | undefined;

  constructor(runtime: GatewayRuntime, books: BatchBooks, log: Logger) {
    this.#runtime = runtime;
    this.#books = books;
    this.#log = log;
    this.#steps = {
      books,
      runtime,
      update: (id, change) => this.#update(id, change),
      nowSeconds: () => this.#nowSeconds(),
      isStopping: () => this.#isStopping(),
      log,
    };
    this.#activator = new BatchActivator(this.#steps);
    const runner = {
      batches: () => this.#active.values(),
      track: (work: Promise<unknown>) => this.#track(work),
      settleIfDone: (active: ActiveBatch) => this.#settleIfDone(active),
      pump: () => this.#pump(),
    };
    this.#results = new BatchResults(this.#steps, runner);
    this.#lines = new LineRuns(this.#steps, this.#results);
    this.#order = new LineOrder(this.#steps, runner);
  }

  get books(): BatchBooks {
    return this.#books;
  }

  /** A door whose adapter lives above the pipeline (the Responses door's translation, server/). */
  setExecutor(endpoint: BatchEndpoint, executor: LineExecutor): void {
    this.#lines.setExecutor(endpoint, executor);
  }

  /**
   * Resumes every batch the books hold unfinished (a restart), and watches windows; with shared books, looks for
   * batches to take over every third of `batches.lease_ms`, and renews the leases of those it runs as often.
   */
  start(): void {
    this.#track(this.#takeRunnable());
    this.#expiryTimer = setInterval(() => {
      // No batch running here: nothing to read. Tracked, that check "worked" every second, and a store that refused
      // every look for batches (Redis away) was said again at each look (#track).
      if (this.#active.size > 0) this.#track(this.#checkExpiry());
    }, EXPIRY_CHECK_MS);
    this.#expiryTimer.unref();
    if (this.#books.isShared) {
      // A nudge (Redis pub/sub) when another replica created a batch or gave one up: taken now if its lease is free,
      // not at the next look; the looks stay, for a nudge missed (the subscriber away) or a lease that lapsed.
      this.#books.onRunnable((id) => {
        if (this.#isStopping()) return;
        this.#track(id === undefined ? this.#takeRunnable() : this.submit(id));
      });
      const everyMs = Math.max(100, Math.floor(this.#leaseMs() / 3));
      this.#leaseTimer = setInterval(() => this.#track(this.#renewAndTake()), everyMs);
      this.#leaseTimer.unref();
    }
  }

  /**
   * A batch to run (new: `validating`; after a restart or a lapsed lease: wherever it was). Resolves once it is taken
   * (or another replica holds it, or it ended at once).
   */
  async submit(id: string): Promise<void> {
    if (this.#active.has(id) || this.#starting.has(id) || this.#finishing.has(id) || this.#isStopping()) return;
    this.#starting.add(id);
    try {
      if (!(await this.#books.takeLease(id, this.#holder, this.#leaseMs()))) return;
      const stored = await this.#books.batch(id);
      const active =
        stored === undefined || isFinished(stored.batch.status) ? undefined : await this.#activator.activate(stored);
      if (active === undefined || this.#isStopping()) {
        await this.#books.dropLease(id, this.#holder);
        return;
      }
      this.#active.set(id, active);
    } finally {
      this.#starting.delete(id);
    }
    const active = this.#active.get(id);
    if (active === undefined) return;
    this.#settleIfDone(active);
    this.#pump();
  }

  /**
   * A batch just created: taken and its input checked in the background (a file of 700,000 lines takes seconds to
   * check), so that its create answers `validating` at once, as OpenAI's does.
   */
  submitLater(id: string): void {
    this.#track(this.submit(id));
  }

  /**
   * `POST /v1/batches/{id}/cancel`: `cancelling` at once; no new line starts, the lines in flight finish, then
   * `cancelled` with what finished in its files. Returns the batch as it is now. On a replica that does not run the
   * batch, the one that does sees the status at its next look (at most a second); a batch no one runs is taken here
   * and ends at once.
   */
  async cancel(id: string): Promise<BatchObject | undefined> {
    const cancelled = await this.#update(id, (batch) =>
      isFinished(batch.status) || batch.status === "cancelling"
        ? undefined
        : { ...batch, status: "cancelling", cancelling_at: this.#nowSeconds() },
    );
    if (cancelled !== undefined) {
      const active = this.#active.get(id);
      if (active === undefined) await this.submit(id);
      else this.#cancelled(active);
    }
    return (await this.#books.batch(id))?.batch;
  }

  /**
   * The gateway's exit: lines in flight are aborted (not written: they run again after a restart, or on another
   * replica at once: the leases are given up).
   */
  async close(): Promise<void> {
    this.#closing.abort();
    if (this.#expiryTimer !== undefined) clearInterval(this.#expiryTimer);
    if (this.#leaseTimer !== undefined) clearInterval(this.#leaseTimer);
    this.#results.close();
    this.#order.close();
    const running = [...this.#active.keys()];
    for (const active of this.#active.values()) {
      // Not dropWork: the lines parked are not done; they run again after a restart. Only their timers go.
      for (const group of active.parked.values()) clearTimeout(group.timer);
      active.controller.abort();
    }
    await Promise.allSettled([...this.#settling]);
    this.#results.logUnwrittenAtExit(this.#active.values());
    await Promise.allSettled(running.map((id) => this.#books.dropLease(id, this.#holder)));
  }

  /**
   * Read once, at the start: the renewals' period is fixed then, and a lease made shorter by a reload than a third of
   * it would lapse between two renewals (and the replicas would take a batch from each other).
   */
  #leaseMs(): number {
    this.#leaseMsAtStart ??= this.#runtime.snapshot.config.batches.leaseMs;
    return this.#leaseMsAtStart;
  }

  /**
   * Runs `work` in the background, waited for at the exit; a failure (Redis away) is logged, never thrown: once until
   * a step works again, not at every look (every third of `lease_ms` while Redis is down).
   */
  #track(work: Promise<unknown>): void {
    const settled: Promise<void> = work
      .then(() => {
        this.#isStepFailing = false;
      })
      .catch((error: unknown) => {
        if (!this.#isStepFailing) {
          this.#log.warn({ err: error }, "batch: a batch step failed (said once until one works again)");
        }
        this.#isStepFailing = true;
      })
      .finally(() => this.#settling.delete(settled));
    this.#settling.add(settled);
  }

  /** Every unfinished batch no one else runs. */
  async #takeRunnable(): Promise<void> {
    for (const id of await this.#books.runnableIds()) {
      if (this.#isStopping()) return;
      await this.submit(id);
    }
  }

  /**
   * Renews the leases of the batches running here; one this replica lost (it was away longer than the lease, and
   * another took the batch) stops here at once, its lines in flight not written. Then takes what lapsed elsewhere.
   */
  async #renewAndTake(): Promise<void> {
    for (const active of [...this.#active.values()]) {
      if (active.isSettled) continue;
      if (await this.#books.takeLease(active.id, this.#holder, this.#leaseMs())) continue;
      this.#log.warn({ batchId: active.id }, "batch: its lease lapsed and another replica runs it; stopped here");
      this.#active.delete(active.id);
      active.isSettled = true;
      dropWork(active);
      // Its unwritten results go with it: those lines have no row, and the replica running it now runs them again.
      this.#results.dropUnwritten(active);
      active.controller.abort();
    }
    await this.#takeRunnable();
  }

  #cancelled(active: ActiveBatch): void {
    if (active.isCancelling) return;
    active.isCancelling = true;
    dropWork(active);
    this.#settleIfDone(active);
  }

  /**
   * Changes the kept batch with `change` (undefined: no change) by compare and set, read again when another writer
   * changed it meanwhile; a status one reads there (a cancel from another replica) reaches the batch running here.
   * Returns the batch written, or undefined when nothing was.
   */
  async #update(id: string, change: (batch: BatchObject) => BatchObject | undefined): Promise<BatchObject | undefined> {
    for (let tries = 0; tries < MAX_WRITE_TRIES; tries++) {
      const stored = await this.#books.batch(id);
      if (stored === undefined) return undefined;
      const active = this.#active.get(id);
      if (active !== undefined && stored.batch.status === "cancelling") this.#cancelled(active);
      const changed = change(stored.batch);
      if (changed === undefined) return undefined;
      if (await this.#books.replaceBatch({ ...stored, batch: changed }, stored.batch)) return changed;
    }
    throw new InternalError(`Batch ${id} kept changing while it was written.`);
  }

  /** The gateway's exit began (its shutdown, then this runner's close). */
  #isStopping(): boolean {
    return this.#closing.signal.aborted || this.#runtime.isShuttingDown;
  }

  #nowSeconds(): number {
    return Math.floor(this.#runtime.clock.now() / 1000);
  }

  /**
   * Starts lines while slots are free, in turn (nextBatch); a line that must wait (a limit, a pause after a 5xx) gives
   * its slot back.
   */
  #pump(): void {
    const concurrency = this.#runtime.snapshot.config.batches.concurrency;
    // While a finished line's result waits to be written, no line starts (the bound of BatchResults).
    while (this.#inFlight < concurrency && !this.#isStopping() && !this.#results.hasUnwritten) {
      if (this.#order.isLiveWaiting()) return;
      const active = this.#order.nextBatch();
      if (active === undefined) return;
      const picked = this.#order.nextLine(active);
      if (picked === "yield") {
        setImmediate(() => this.#pump());
        return;
      }
      if (picked === "none") continue;
      const reserved = this.#order.launch(active, picked.key);
      if (reserved === undefined) {
        this.#order.parkForLaunch(active, picked.key, picked.line.index);
        continue;
      }
      this.#inFlight += 1;
      active.inFlight += 1;
      active.unanswered.add(picked.line.index);
      const running = this.#lines
        .run(active, picked.line, picked.body, reserved)
        .then((outcome) => this.#order.ranLine(active, picked, outcome))
        .catch((error: unknown) => this.#lines.failed(active, picked.line, error))
        .finally(() => {
          reserved();
          this.#settling.delete(running);
          this.#inFlight -= 1;
          active.inFlight -= 1;
          if (!this.#isStopping()) active.unanswered.delete(picked.line.index);
          this.#settleIfDone(active);
          this.#pump();
        });
      this.#settling.add(running);
    }
  }

  /** Each running batch's window, and its status (a cancel made on another replica). */
  async #checkExpiry(): Promise<void> {
    const nowSeconds = this.#nowSeconds();
    for (const active of [...this.#active.values()]) {
      const stored = await this.#books.batch(active.id);
      if (stored === undefined || active.isExpiring || active.isCancelling) continue;
      if (stored.batch.status === "cancelling") {
        this.#cancelled(active);
        continue;
      }
      if (stored.batch.expires_at > nowSeconds) continue;
      active.isExpiring = true;
      dropWork(active);
      this.#settleIfDone(active);
    }
  }

  /** The batch's end once nothing is in flight: completed, cancelled or expired, with its files written. */
  #settleIfDone(active: ActiveBatch): void {
    const status = endStatus(active, this.#isStopping());
    if (status === undefined) return;
    active.isSettled = true;
    this.#active.delete(active.id);
    this.#finishing.add(active.id);
    this.#track(
      finishBatch(this.#steps, active.id, status, status === "expired" ? active.lines : [], active)
        .catch((error: unknown) => {
          this.#finishAgainLater(active.id);
          throw error;
        })
        .finally(async () => {
          this.#finishing.delete(active.id);
          await this.#books.dropLease(active.id, this.#holder);
        }),
    );
  }

  /**
   * A batch whose end the store refused (locked, any store error) is taken again from its rows a little later, and
   * ends then: without this it stayed `in_progress` (or `finalizing`) until a restart, every result written. With
   * shared books the looks every third of `lease_ms` take it again already.
   */
  #finishAgainLater(id: string): void {
    if (this.#books.isShared || this.#isStopping()) return;
    const timer = setTimeout(() => {
      this.#track(
        this.submit(id).catch((error: unknown) => {
          this.#finishAgainLater(id);
          throw error;
        }),
      );
    }, FINISH_RETRY_MS);
    timer.unref();
  }
}
