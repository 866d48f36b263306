// A finished line's result written, then counted on its batch; a result the store refused (locked, unreachable) kept
// in memory and written again with backoff, no line starting meanwhile; what the exit leaves unwritten, told.

import { isFinished } from "../protocols/batches/batch-objects.ts";
import type { ResultRow } from "../state/batch-rows.ts";
import { type ActiveBatch, type BatchSteps, customIdOf, type UnwrittenResult } from "./active-batch.ts";
import { addUsage, usageOf } from "./batch-lines.ts";

/** ms before a result the store refused is written again; doubled at each failure up to MAX_REWRITE_MS. */
const FIRST_REWRITE_MS = 200;
/** Longest wait between two tries of the results kept unwritten. */
const MAX_REWRITE_MS = 5_000;

/** What the results ask of their runner. */
export interface ResultsRunner {
  /** The batches running here. */
  batches(): Iterable<ActiveBatch>;
  /** Runs work in the background, waited for at the exit, its failure logged. */
  track(work: Promise<unknown>): void;
  /** Ends the batch if nothing is left to run or write. */
  settleIfDone(active: ActiveBatch): void;
  /** Starts lines while slots are free. */
  pump(): void;
}

export class BatchResults {
  readonly #steps: BatchSteps;
  readonly #runner: ResultsRunner;
  /**
   * Results kept unwritten, across batches. The bound: no line starts while any is kept (the store that refused one
   * would refuse the next), so at most the lines in flight when the store began refusing are kept:
   * `batches.concurrency` (a reload raising it meanwhile starts nothing either).
   */
  #unwrittenCount = 0;
  #rewriteTimer: NodeJS.Timeout | undefined;
  #rewriteDelayMs = FIRST_REWRITE_MS;
  #isRewriting = false;

  constructor(steps: BatchSteps, runner: ResultsRunner) {
    this.#steps = steps;
    this.#runner = runner;
  }

  /** A result is kept unwritten: no line may start. */
  get hasUnwritten(): boolean {
    return this.#unwrittenCount > 0;
  }

  /** The batch stopped here (its lease lost): its unwritten results go with it, its lines run elsewhere. */
  dropUnwritten(active: ActiveBatch): void {
    this.#unwrittenCount -= active.unwritten.size;
    active.unwritten.clear();
  }

  /** The gateway's exit: no more rewrites. */
  close(): void {
    if (this.#rewriteTimer !== undefined) clearTimeout(this.#rewriteTimer);
  }

  /**
   * The line's result, then the batch's counts and usage. A line whose result was already written (by a replica whose
   * lease lapsed while this line ran) counts once: its usage and count are not added again.
   */
  async written(active: ActiveBatch, result: ResultRow, answer?: unknown): Promise<void> {
    let isKept: boolean;
    try {
      isKept = await this.#steps.books.putResult(active.id, result);
    } catch (error) {
      // Once only logged, the line was then in neither file, for good (a state file locked past its wait, Redis away).
      if (this.#steps.isStopping()) {
        this.#steps.log.warn(
          { err: error, batchId: active.id, customIds: [customIdOf(active, result.index)] },
          "batch: a line's result could not be written at the exit; the line runs again after a restart",
        );
        return;
      }
      this.#keepUnwritten(active, { result, answer }, error);
      return;
    }
    active.unanswered.delete(result.index);
    if (isKept) await this.#counted(active, result, answer);
  }

  /** A written result's count and usage, on the batch (its `request_counts` while it runs). */
  async #counted(active: ActiveBatch, result: ResultRow, answer: unknown): Promise<void> {
    if (result.isError) active.failed += 1;
    else active.completed += 1;
    addUsage(active.usage, answer);
    const added = active.usage;
    active.usage = { input: 0, output: 0, cached: 0, reasoning: 0 };
    const counts = { total: active.lines.length, completed: active.completed, failed: active.failed };
    await this.#steps.update(active.id, (batch) =>
      isFinished(batch.status) ? undefined : { ...batch, request_counts: counts, usage: usageOf(batch.usage, added) },
    );
  }

  #keepUnwritten(active: ActiveBatch, kept: UnwrittenResult, error: unknown): void {
    if (!active.unwritten.has(kept.result.index)) this.#unwrittenCount += 1;
    active.unwritten.set(kept.result.index, kept);
    if (this.#unwrittenCount === 1) {
      this.#steps.log.warn(
        { err: error, batchId: active.id },
        "batch: a line's result could not be written; kept in memory and written again, no line starts meanwhile",
      );
    }
    this.#scheduleRewrite();
  }

  #scheduleRewrite(): void {
    if (this.#rewriteTimer !== undefined || this.#isRewriting || this.#steps.isStopping()) return;
    this.#rewriteTimer = setTimeout(() => {
      this.#rewriteTimer = undefined;
      this.#runner.track(this.#rewrite());
    }, this.#rewriteDelayMs);
    this.#rewriteTimer.unref();
  }

  /**
   * Writes the kept results again, in order, until one is refused (the store still refuses: the next try waits twice
   * as long). Each written one counts then; a batch whose last kept result is written may end, and lines start again.
   */
  async #rewrite(): Promise<void> {
    this.#isRewriting = true;
    let isRefused = false;
    try {
      for (const active of [...this.#runner.batches()]) {
        for (const [index, kept] of [...active.unwritten]) {
          if (this.#steps.isStopping()) return;
          // Its lease lost meanwhile (#renewAndTake): its kept results went with it.
          if (active.isSettled) break;
          // This very result may be kept already (its first write landed, but its answer was lost: a timeout, a
          // connection gone): putResult says so, and it counts now. Refused as already written, it counted only in
          // the batch's final counts, one line behind while the batch ran.
          let isKept: boolean;
          try {
            isKept = await this.#steps.books.putResult(active.id, kept.result);
          } catch {
            isRefused = true;
            return;
          }
          if (active.unwritten.delete(index)) this.#unwrittenCount -= 1;
          if (isKept) {
            await this.#counted(active, kept.result, kept.answer).catch((error: unknown) =>
              this.#steps.log.warn({ err: error, batchId: active.id }, "batch: a written line's count update failed"),
            );
          }
        }
        this.#runner.settleIfDone(active);
      }
    } finally {
      this.#isRewriting = false;
      if (isRefused) this.#rewriteDelayMs = Math.min(this.#rewriteDelayMs * 2, MAX_REWRITE_MS);
      else this.#rewriteDelayMs = FIRST_REWRITE_MS;
      if (this.#unwrittenCount > 0) this.#scheduleRewrite();
      else if (!this.#steps.isStopping()) {
        this.#steps.log.info({}, "batch: every kept result is written; lines start again");
        this.#runner.pump();
      }
    }
  }

  /**
   * What the exit leaves unwritten: no row, so those lines run again after a restart (once in the files). `customIds`:
   * finished lines whose result the store refused; `inFlightCustomIds`: lines in flight at the exit, aborted (or
   * answered, their result then refused): they may have been sent and charged already, and are sent again.
   */
  logUnwrittenAtExit(batches: Iterable<ActiveBatch>): void {
    for (const active of batches) {
      const inFlight = [...active.unanswered].filter((index) => !active.unwritten.has(index)).sort((a, b) => a - b);
      if (active.unwritten.size === 0 && inFlight.length === 0) continue;
      this.#steps.log.warn(
        {
          batchId: active.id,
          customIds: [...active.unwritten.keys()].map((index) => customIdOf(active, index)),
          inFlightCustomIds: inFlight.map((index) => customIdOf(active, index)),
        },
        "batch: results not written at the exit; these lines run again after a restart",
      );
    }
  }
}
