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
// result the store refuses is kept and written again (#rewrite): no line starts meanwhile, and the batch does not end
// before it is written. Shared books (Redis): a batch is run by the replica holding its lease (taken with SET NX PX,
// renewed while it runs); each replica looks for unfinished batches every third of `batches.lease_ms` and takes over
// one whose lease lapsed (its runner died), from the lines not written (and at once when another replica announces a
// new batch or a lease it gave up: redis-batch-rows.ts `onRunnable`); a line in flight when that runner died runs twice
// at most, and its result is kept once. A cancel or the window's end is seen through the batch's status, read again at
// each of those looks and after each line. The module stays whole: scheduling, pacing and a batch's end share one state
// per batch (ActiveBatch) and one order of writes; the line's pieces are in batch-lines.ts.
import { MAX_JSON_DEPTH, MAX_JSON_OBJECT_MEMBERS } from "../config/request-bounds.ts";
import { InternalError, PayloadTooLargeError } from "../errors/gateway-error.ts";
import { renderError, toGatewayError } from "../errors/render-error.ts";
import { isNeverFit } from "../limits/budget-types.ts";
import type { Logger } from "../logger.ts";
import {
  answeredLine,
  BATCH_EXPIRED_CODE,
  BATCH_EXPIRED_MESSAGE,
  type BatchEndpoint,
  type BatchErrorEntry,
  type BatchLine,
  type BatchObject,
  checkingBatchInput,
  type InputCheck,
  isFinished,
  lineBody,
  type StoredBatch,
  type StoredFile,
  unansweredLine,
} from "../protocols/batches/batch-objects.ts";
import { randomIds } from "../protocols/ids.ts";
import type { ResultRow } from "../state/batch-rows.ts";
import type { BatchBooks } from "./batch-books.ts";
import {
  addUsage,
  FileParts,
  type LineAnswer,
  type LineCall,
  type LineCheck,
  type LineExecutor,
  type LineWait,
  type MutableUsage,
  nextTurn,
  pipelineExecutor,
  usageOf,
} from "./batch-lines.ts";
import { chargedBeforeFailure } from "./chunk-charges.ts";
import { CHAT_ENDPOINT, COMPLETIONS_ENDPOINT, EMBEDDINGS_ENDPOINT, type EndpointSpec } from "./endpoints.ts";
import type { GatewayRuntime } from "./gateway-runtime.ts";
import { batchLineRoute } from "./plan-request.ts";

/** A batch line's JSON is bounded as a live request's body is (server/json-body.ts). */
const LINE_BOUNDS = { maxDepth: MAX_JSON_DEPTH, maxMembers: MAX_JSON_OBJECT_MEMBERS };

/** The error entry of a batch whose input file was deleted before it ran. */
const INPUT_FILE_GONE = "invalid_file";
/** ms between looks at the route queue while live requests wait in it. */
const LIVE_FIRST_POLL_MS = 50;
/** Longest single wait off a slot for a limit or a 5xx (the plan is made again after it: a reload, a freed slot). */
const MAX_PACING_SLEEP_MS = 5_000;
/** A wait after a 429 that named no time; after the nth 5xx of a line, n times this. */
const DEFAULT_RETRY_MS = 1_000;
/** Tries of a line that failed with a 5xx (every candidate failing now) before it goes to the error file. */
const MAX_SERVER_ERROR_TRIES = 3;
/** ms between checks of running batches' windows (`completion_window`) and of their status (a cancel elsewhere). */
const EXPIRY_CHECK_MS = 1_000;
/** Results read at once at a batch's end, in bytes of lines (each page one read of the store, then a turn of the loop). */
const RESULTS_PAGE_BYTES = 256 * 1024;
/** `batch_expired` lines made between two turns of the event loop. */
const EXPIRED_LINES_PER_TURN = 1_000;
/** Tries of a compare-and-set write of a batch that others keep changing (a cancel, a count update) before it gives up. */
const MAX_WRITE_TRIES = 10;
/** ms before a result the store refused is written again; doubled at each failure up to MAX_REWRITE_MS. */
const FIRST_REWRITE_MS = 200;
/** Longest wait between two tries of the results kept unwritten. */
const MAX_REWRITE_MS = 5_000;
/** ms before a batch whose end the store refused is taken again (#finishAgainLater). */
const FINISH_RETRY_MS = 1_000;

/** A finished line's result the store refused (locked, unreachable): kept until a write of it gets through. */
interface UnwrittenResult {
  readonly result: ResultRow;
  /** The answer's body, for the usage it adds once written. */
  readonly answer: unknown;
}

interface ActiveBatch {
  readonly id: string;
  readonly owner: string;
  readonly endpoint: BatchEndpoint;
  /** The input file's bytes (one Buffer for every batch of the same file: inputOf shares it). */
  readonly input: Buffer;
  readonly lines: readonly BatchLine[];
  /** Indexes not yet tried, in order. */
  readonly pending: number[];
  /**
   * Lines tried that wait for a limit, by what they ask for (planKey): they hold no slot meanwhile, so a batch on a
   * 1-rpm model cannot keep every slot asleep while other batches' lines, or its own lines for another model, could
   * run now. A line of `pending` whose key is parked joins it untried (its plan would say the same). Bounded as
   * `pending` is: each line is in one of them at most once.
   */
  readonly parked: Map<string, ParkedLines>;
  inFlight: number;
  /**
   * Lines started here and without a result row yet, by index: a line leaves it when its result is written, or when
   * its run ends before the exit. What the exit aborts (or whose result it cannot write) stays, and its warning names
   * those lines: they may have been sent, and they run again after a restart.
   */
  readonly unanswered: Set<number>;
  isCancelling: boolean;
  isExpiring: boolean;
  completed: number;
  failed: number;
  usage: MutableUsage;
  /** Aborted by the gateway's exit: the lines in flight are not written and run again after a restart. */
  readonly controller: AbortController;
  /** Its end is being written (once). */
  isSettled: boolean;
  /**
   * Finished lines whose result the store refused, by line: written again with backoff (#rewrite); the batch does not
   * end before they are written, and they are lost only with the process (then they have no row and run again).
   */
  readonly unwritten: Map<number, UnwrittenResult>;
  /**
   * Tries that ended in a 5xx from every candidate, by line, while the line pauses before its next (off its slot,
   * parked under its own key: lineKey). Dropped when the line ends.
   */
  readonly serverErrors: Map<number, number>;
}

/** A batch's lines that wait for the same limit (one model and its fallbacks), until `untilMs`. */
interface ParkedLines {
  /** In order. */
  readonly indexes: number[];
  untilMs: number;
  /** Pumps once `untilMs` is reached. */
  timer: NodeJS.Timeout | undefined;
  /** They wait for a line of their key to be reserved (BatchRunner.#launching), not for a limit: woken then. */
  isHeldForLaunch: boolean;
}

/** A line to start: its body parsed (undefined when it does not parse: its run reports that). */
interface PickedLine {
  readonly line: BatchLine;
  readonly key: string;
  readonly body: Record<string, unknown> | undefined;
}

/**
 * A line's run ended (written, or to run again after a restart), or it waits `waitMs` off its slot: for a limit, with
 * the lines of its plan's key; or alone (`isLineOnly`: a pause after a 5xx, which says nothing of the other lines).
 */
type LineOutcome = { readonly waitMs: number; readonly isLineOnly?: boolean } | undefined;

/**
 * Longest wait of lines held while a line of their key is between its plan and its reservation (#launching): they are
 * woken when it is reserved or ends; this only bounds a wake that never came.
 */
const LAUNCH_WAIT_MS = 1_000;
/** Lines moved from `pending` to a parked key in one pump at most (each is parsed): the event loop stays free. */
const MAX_PARKED_PER_PUMP = 500;

export class BatchRunner {
  readonly #runtime: GatewayRuntime;
  readonly #books: BatchBooks;
  readonly #log: Logger;
  readonly #executors = new Map<BatchEndpoint, LineExecutor>();
  readonly #active = new Map<string, ActiveBatch>();
  readonly #settling = new Set<Promise<void>>();
  /** Input files' bytes while a batch holds them (inputOf); an id whose Buffer was collected is read again. */
  readonly #inputs = new Map<string, WeakRef<Buffer>>();
  /** Input files being read (inputOf): batches of one file submitted together share the read. */
  readonly #reading = new Map<string, Promise<Buffer | undefined>>();
  readonly #closing = new AbortController();
  /** Batches being taken (lease, input read): not taken twice by two polls. */
  readonly #starting = new Set<string>();
  /** Batches whose end is being written here: a poll meanwhile (still unfinished in the books) must not run them again. */
  readonly #finishing = new Set<string>();
  /** This process's name on the leases it holds. */
  readonly #holder = randomIds("runner_");
  #inFlight = 0;
  /** The turn of nextBatch: the owner served last, and each owner's batch served last. */
  #lastOwner: string | undefined;
  readonly #lastBatchOf = new Map<string, string>();
  #expiryTimer: NodeJS.Timeout | undefined;
  #leaseTimer: NodeJS.Timeout | undefined;
  #isStepFailing = false;
  #leaseMsAtStart: number | undefined;
  /**
   * Results kept unwritten, across batches. The bound: no line starts while any is kept (the store that refused one
   * would refuse the next), so at most the lines in flight when the store began refusing are kept:
   * `batches.concurrency` (a reload raising it meanwhile starts nothing either).
   */
  #unwrittenCount = 0;
  #rewriteTimer: NodeJS.Timeout | undefined;
  #rewriteDelayMs = FIRST_REWRITE_MS;
  #isRewriting = false;
  /** Pumps again while live requests wait in the route queue (no line starts meanwhile). */
  #liveFirstTimer: NodeJS.Timeout | undefined;
  /**
   * The launch keys (launchKeys: its plan key, its client's when the client has budgets) of each line started and not
   * yet reserved (its tokens not yet counted in a budget), across batches: no other line with one of those keys starts
   * meanwhile. Both would be planned on the same room, and with concurrency above what a `tpm` holds, the second was
   * sent and refused by its own pipeline (a 429 record).
   */
  readonly #launching = new Map<string, object>();

  constructor(runtime: GatewayRuntime, books: BatchBooks, log: Logger) {
    this.#runtime = runtime;
    this.#books = books;
    this.#log = log;
    this.#executors.set("/v1/chat/completions", pipelineExecutor(runtime, CHAT_ENDPOINT));
    this.#executors.set("/v1/completions", pipelineExecutor(runtime, COMPLETIONS_ENDPOINT));
    this.#executors.set("/v1/embeddings", pipelineExecutor(runtime, EMBEDDINGS_ENDPOINT));
  }

  get books(): BatchBooks {
    return this.#books;
  }

  /** A door whose adapter lives above the pipeline (the Responses door's translation, server/). */
  setExecutor(endpoint: BatchEndpoint, executor: LineExecutor): void {
    this.#executors.set(endpoint, executor);
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
      const active = stored === undefined || isFinished(stored.batch.status) ? undefined : await this.#activate(stored);
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
    if (this.#rewriteTimer !== undefined) clearTimeout(this.#rewriteTimer);
    if (this.#liveFirstTimer !== undefined) clearTimeout(this.#liveFirstTimer);
    const running = [...this.#active.keys()];
    for (const active of this.#active.values()) {
      // Not dropWork: the lines parked are not done; they run again after a restart. Only their timers go.
      for (const group of active.parked.values()) clearTimeout(group.timer);
      active.controller.abort();
    }
    await Promise.allSettled([...this.#settling]);
    this.#logUnwrittenAtExit();
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
      this.#unwrittenCount -= active.unwritten.size;
      active.unwritten.clear();
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
   * The batch's lines from its input file, checked (OpenAI's validation) in steps that let live requests through;
   * undefined when it ended here, or meanwhile (cancelled while it was checked, the gateway stopping).
   */
  async #activate(submitted: StoredBatch): Promise<ActiveBatch | undefined> {
    const { owner } = submitted;
    const input = await this.#inputOf(submitted.batch.input_file_id, owner);
    if (input === undefined) {
      await this.#fail(submitted, [
        {
          code: INPUT_FILE_GONE,
          message: `The input file '${submitted.batch.input_file_id}' is gone.`,
          param: "input_file_id",
          line: null,
        },
      ]);
      return undefined;
    }
    const checked = await this.#checkInput(input, submitted.batch.endpoint);
    // Checked over several turns of the event loop: the batch may have been cancelled (and ended) meanwhile.
    const stored = await this.#books.batch(submitted.batch.id);
    if (checked === undefined || stored === undefined || isFinished(stored.batch.status)) return undefined;
    const { batch } = stored;
    if (!checked.isValid) {
      await this.#fail(stored, checked.errors);
      return undefined;
    }
    // What a restart or a takeover resumes from, read a page at a time as at the batch's end (#finish).
    const done = new Set<number>();
    let completed = 0;
    for await (const page of this.#books.resultPages(batch.id, RESULTS_PAGE_BYTES)) {
      for (const result of page) {
        done.add(result.index);
        if (!result.isError) completed += 1;
      }
      await nextTurn();
    }
    const active: ActiveBatch = {
      id: batch.id,
      owner,
      endpoint: batch.endpoint,
      input,
      lines: checked.lines,
      pending: checked.lines.filter((line) => !done.has(line.index)).map((line) => line.index),
      parked: new Map(),
      inFlight: 0,
      unanswered: new Set(),
      isCancelling: batch.status === "cancelling",
      isExpiring: false,
      completed,
      failed: done.size - completed,
      usage: { input: 0, output: 0, cached: 0, reasoning: 0 },
      controller: new AbortController(),
      isSettled: false,
      unwritten: new Map(),
      serverErrors: new Map(),
    };
    if (active.isCancelling) active.pending.length = 0;
    // Resumed after its window ended (the gateway was down meanwhile): no line starts, it expires at once.
    if (!active.isCancelling && batch.expires_at <= this.#nowSeconds()) {
      active.isExpiring = true;
      active.pending.length = 0;
    }
    if (batch.status === "validating") {
      const started = await this.#update(batch.id, (kept) =>
        kept.status !== "validating"
          ? undefined
          : {
              ...kept,
              status: "in_progress",
              in_progress_at: this.#nowSeconds(),
              model: checked.model,
              request_counts: { total: checked.lines.length, completed: 0, failed: 0 },
            },
      );
      // Cancelled meanwhile (on another replica): it ends at once, as cancelled.
      if (started === undefined && (await this.#books.batch(batch.id))?.batch.status === "cancelling") {
        active.isCancelling = true;
        active.pending.length = 0;
      }
    }
    return active;
  }

  /**
   * The input file's bytes, one Buffer for every batch of the file while any holds it (the rows read a copy at each
   * call: batches of one file created together, or resumed together after a restart, held one each); a read under
   * way is shared too.
   */
  #inputOf(fileId: string, owner: string): Promise<Buffer | undefined> {
    const held = this.#inputs.get(fileId)?.deref();
    if (held !== undefined) return Promise.resolve(held);
    const reading = this.#reading.get(fileId);
    if (reading !== undefined) return reading;
    for (const [id, ref] of this.#inputs) if (ref.deref() === undefined) this.#inputs.delete(id);
    const read = this.#books.inputContent(fileId, owner).then((content) => {
      if (content === undefined) this.#inputs.delete(fileId);
      else this.#inputs.set(fileId, new WeakRef(content));
      return content;
    });
    this.#reading.set(fileId, read);
    return read.finally(() => this.#reading.delete(fileId));
  }

  /** checkingBatchInput, its steps spread over turns of the event loop; undefined when the gateway stops meanwhile. */
  async #checkInput(input: Buffer, endpoint: BatchEndpoint): Promise<InputCheck | undefined> {
    const steps = checkingBatchInput(input, endpoint, this.#runtime.snapshot.config.batches.maxLines, LINE_BOUNDS);
    for (;;) {
      const step = steps.next();
      if (step.done === true) return step.value;
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.#isStopping()) return undefined;
    }
  }

  async #fail(stored: StoredBatch, errors: readonly BatchErrorEntry[]): Promise<void> {
    await this.#update(stored.batch.id, (batch) =>
      isFinished(batch.status)
        ? undefined
        : { ...batch, status: "failed", failed_at: this.#nowSeconds(), errors: { object: "list", data: errors } },
    );
  }

  /**
   * Starts lines while slots are free, in turn (nextBatch); a line that must wait (a limit, a pause after a 5xx) gives
   * its slot back.
   */
  #pump(): void {
    const concurrency = this.#runtime.snapshot.config.batches.concurrency;
    // While a finished line's result waits to be written, no line starts (the bound of #unwrittenCount).
    while (this.#inFlight < concurrency && !this.#isStopping() && this.#unwrittenCount === 0) {
      if (this.#isLiveWaiting()) return;
      const active = this.#nextBatch();
      if (active === undefined) return;
      const picked = this.#nextLine(active);
      if (picked === "yield") {
        setImmediate(() => this.#pump());
        return;
      }
      if (picked === "none") continue;
      const keys = this.#launchKeys(active, picked.key);
      if (keys.some((key) => this.#launching.has(key))) {
        this.#park(active, picked.key, picked.line.index, LAUNCH_WAIT_MS, true);
        continue;
      }
      const launch = {};
      for (const key of keys) this.#launching.set(key, launch);
      const reserved = (): void => this.#reserved(keys, launch);
      this.#inFlight += 1;
      active.inFlight += 1;
      active.unanswered.add(picked.line.index);
      const running = this.#runLine(active, picked.line, picked.body, reserved)
        .then((outcome) => {
          const { index } = picked.line;
          if (outcome === undefined) active.serverErrors.delete(index);
          else this.#park(active, outcome.isLineOnly === true ? lineKey(index) : picked.key, index, outcome.waitMs);
        })
        .catch((error: unknown) => this.#runFailed(active, picked.line, error))
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

  /**
   * A line's run threw where no answer was made of it (a bug, its input bytes unreadable): once only logged, the line
   * was in neither file and the batch ended `completed` with counts short of its total. It goes to the error file as
   * a 500 (the message names no cause: an unexpected error may carry a path or a key), counted failed. Not at the
   * exit (the line runs again after a restart); a line whose result was written already keeps it (putResult refuses a
   * second result).
   */
  async #runFailed(active: ActiveBatch, line: BatchLine, error: unknown): Promise<void> {
    this.#log.warn({ err: error, batchId: active.id, customIds: [line.customId] }, "batch: a line's run failed");
    if (this.#isStopping()) return;
    active.serverErrors.delete(line.index);
    const requestId = randomIds("batch_req_");
    const internal = new InternalError("The gateway failed while running this request.");
    try {
      await this.#written(active, {
        index: line.index,
        isError: true,
        line: answeredLine(requestId, line.customId, internal.status, requestId, renderError(internal)),
      });
    } catch (writeError) {
      this.#log.warn({ err: writeError, batchId: active.id }, "batch: a failed line's error could not be written");
    }
  }

  /** What a line shares budgets through with other lines: its model and fallbacks; its client, if it has budgets. */
  #launchKeys(active: ActiveBatch, planKey: string): readonly string[] {
    const hasClientBudgets = active.owner !== "" && this.#runtime.snapshot.clientScopes.has(active.owner);
    return hasClientBudgets ? [planKey, `client:${active.owner}`] : [planKey];
  }

  /**
   * The line started under `launch` is reserved (or ended, or waits): the next line of its keys may start, and the
   * lines held for a launch are woken to look again (in the next turn: this runs inside the line's pipeline).
   */
  #reserved(keys: readonly string[], launch: object): void {
    if (keys.every((key) => this.#launching.get(key) !== launch)) return;
    for (const key of keys) if (this.#launching.get(key) === launch) this.#launching.delete(key);
    let isWoken = false;
    for (const active of this.#active.values()) {
      for (const group of active.parked.values()) {
        if (!group.isHeldForLaunch) continue;
        group.isHeldForLaunch = false;
        group.untilMs = 0;
        clearTimeout(group.timer);
        group.timer = undefined;
        isWoken = true;
      }
    }
    if (isWoken) setImmediate(() => this.#pump());
  }

  /**
   * Live traffic first: while a live request waits in the route queue, no line starts (it would take the slot or the
   * last of a budget that request waits for); the pump looks again every LIVE_FIRST_POLL_MS. Waiting here, not in a
   * started line, holds no slot: the lines in flight finish and give theirs back.
   */
  #isLiveWaiting(): boolean {
    if (this.#runtime.queuedRequests === 0) return false;
    if (this.#liveFirstTimer === undefined) {
      this.#liveFirstTimer = setTimeout(() => {
        this.#liveFirstTimer = undefined;
        this.#pump();
      }, LIVE_FIRST_POLL_MS);
      this.#liveFirstTimer.unref();
    }
    return true;
  }

  /**
   * The batch's next line to start, in order: the first of a parked key whose time came, or of `pending`. A pending
   * line whose key is parked joins it without a try (up to MAX_PARKED_PER_PUMP per pump: "yield", the pump goes on in
   * the next turn); "none" when every line left waits.
   */
  #nextLine(active: ActiveBatch): PickedLine | "none" | "yield" {
    const nowMs = this.#runtime.clock.now();
    for (let moved = 0; moved < MAX_PARKED_PER_PUMP; ) {
      const due = dueParked(active, nowMs);
      const head = active.pending[0];
      if (due !== undefined && (head === undefined || due.index < head)) {
        const line = active.lines[due.index];
        due.group.indexes.shift();
        if (due.group.indexes.length === 0) {
          clearTimeout(due.group.timer);
          active.parked.delete(due.key);
        }
        if (line === undefined) continue;
        // Its plan's key, not the group's: a line that paused alone (lineKey) waits with its model's lines next time.
        const body = this.#plannedBody(active, line);
        return { line, key: planKey(body), body };
      }
      if (head === undefined) return "none";
      active.pending.shift();
      const line = active.lines[head];
      if (line === undefined) continue;
      const body = this.#plannedBody(active, line);
      const key = planKey(body);
      const group = active.parked.get(key);
      if (group === undefined || group.untilMs <= nowMs) return { line, key, body };
      insertInOrder(group.indexes, head);
      moved += 1;
    }
    return "yield";
  }

  /** The line's body for its plan's key; not parsed when the line is over the body limit (#runLine refuses it unread). */
  #plannedBody(active: ActiveBatch, line: BatchLine): Record<string, unknown> | undefined {
    const bodyLimitBytes = this.#runtime.snapshot.config.server.bodyLimitBytes;
    return isLineOverLimit(line, bodyLimitBytes) ? undefined : bodyOrUndefined(active.input, line);
  }

  /**
   * The line waits `waitMs` (at most MAX_PACING_SLEEP_MS: then it is planned again, after a reload or a freed slot)
   * with the lines of its key, holding no slot. The key's time is the latest word on it.
   */
  #park(active: ActiveBatch, key: string, index: number, waitMs: number, isHeldForLaunch = false): void {
    if (active.isSettled || active.isCancelling || active.isExpiring || this.#isStopping()) return;
    const delayMs = Math.max(1, Math.min(waitMs, MAX_PACING_SLEEP_MS));
    const group = active.parked.get(key) ?? { indexes: [], untilMs: 0, timer: undefined, isHeldForLaunch };
    active.parked.set(key, group);
    insertInOrder(group.indexes, index);
    group.isHeldForLaunch = isHeldForLaunch;
    group.untilMs = this.#runtime.clock.now() + delayMs;
    clearTimeout(group.timer);
    group.timer = setTimeout(() => {
      group.timer = undefined;
      // Due now, whatever the clock reads: a timer may fire a millisecond before the clock reaches `untilMs`, and a
      // group still not due then had no timer left to wake it (its batch stalled for good).
      group.untilMs = 0;
      this.#pump();
    }, delayMs);
    group.timer.unref();
  }

  /**
   * Whose line goes next: the clients (named keys; "" for the unnamed) take turns, and a client's batches take turns
   * among themselves, one line each. Oldest first instead let one 50,000-line batch hold every slot for hours while a
   * 1-line batch (of another client, or the same one) waited behind it, up to its window's end.
   */
  #nextBatch(): ActiveBatch | undefined {
    const byOwner = new Map<string, ActiveBatch[]>();
    for (const active of this.#active.values()) {
      const owned = byOwner.get(active.owner) ?? [];
      owned.push(active);
      byOwner.set(active.owner, owned);
    }
    const nowMs = this.#runtime.clock.now();
    const hasPending = (active: ActiveBatch): boolean =>
      active.pending.length > 0 || dueParked(active, nowMs) !== undefined;
    const owner = nextInTurn(
      [...byOwner.keys()],
      this.#lastOwner,
      (name) => byOwner.get(name)?.some(hasPending) ?? false,
    );
    if (owner === undefined) return undefined;
    const owned = byOwner.get(owner) ?? [];
    const batchId = nextInTurn(
      owned.map((active) => active.id),
      this.#lastBatchOf.get(owner),
      (id) => owned.some((active) => active.id === id && hasPending(active)),
    );
    const active = owned.find((candidate) => candidate.id === batchId);
    if (active === undefined) return undefined;
    this.#lastOwner = owner;
    this.#lastBatchOf.set(owner, active.id);
    return active;
  }

  /**
   * One try of a line, from its plan to its result written; or, when no candidate may serve it now because of limits
   * (or a 429 from every one), or after a 5xx from every one that leaves it tries, how long it waits: it gives its slot
   * back meanwhile (#park), and is taken again after that.
   */
  async #runLine(
    active: ActiveBatch,
    line: BatchLine,
    parsed: Record<string, unknown> | undefined,
    reserved: () => void,
  ): Promise<LineOutcome> {
    const executor = this.#executors.get(active.endpoint);
    const signal = active.controller.signal;
    // The door's own body limit holds for a line too: a live request this large is refused before it is read. A line
    // longer than the limit is refused unparsed (a 60 MB line was parsed and serialised again here: ~3 s of a blocked
    // event loop); one within it keeps the rule of its body as serialised.
    const bodyLimitBytes = this.#runtime.snapshot.config.server.bodyLimitBytes;
    const isOverLimit = isLineOverLimit(line, bodyLimitBytes);
    const body = isOverLimit ? undefined : (parsed ?? lineBody(active.input, line));
    if (body === undefined || Buffer.byteLength(JSON.stringify(body)) > bodyLimitBytes) {
      const requestId = randomIds("batch_req_");
      const tooLarge = new PayloadTooLargeError(
        `The request body is larger than the limit of ${bodyLimitBytes} bytes (server.body_limit_bytes).`,
      );
      await this.#written(active, {
        index: line.index,
        isError: true,
        line: answeredLine(requestId, line.customId, tooLarge.status, requestId, renderError(tooLarge)),
      });
      return;
    }
    if (signal.aborted || this.#runtime.isShuttingDown) return;
    // Not started: the line stays unanswered (an expired batch names it in its error file).
    if (active.isCancelling || active.isExpiring) return;
    const requestId = randomIds("batch_req_");
    let answer: LineAnswer | LineWait;
    try {
      if (executor === undefined) throw new InternalError(`No executor for ${active.endpoint}.`);
      answer = await this.#sent(executor, {
        body,
        client: active.owner === "" ? undefined : active.owner,
        requestId,
        batchId: active.id,
        signal,
        log: this.#log,
        waitBeforeSending: (endpoint, pipelineBody) => this.#waitBeforeSending(active, endpoint, pipelineBody),
        onReserved: reserved,
      });
    } catch (error) {
      // Ended by the exit (or refused because the gateway is stopping): not written, it runs again after a restart.
      if (signal.aborted || this.#runtime.isShuttingDown) return;
      const gatewayError = toGatewayError(error);
      // An embeddings line whose earlier chunks were answered and charged before a later one failed: written now, with
      // what they cost on the batch's usage. Tried again, it paid for those chunks once more each time (a 429 past its
      // deadline as long as the batch ran: every try ended the same way), and the batch's usage counted none of it.
      const charged = chargedBeforeFailure.of(error);
      if (charged !== undefined) {
        const usage = { prompt_tokens: charged.promptTokens, completion_tokens: charged.completionTokens };
        const failed = answeredLine(
          requestId,
          line.customId,
          gatewayError.status,
          requestId,
          renderError(gatewayError),
        );
        await this.#written(active, { index: line.index, isError: true, line: failed }, { usage });
        return;
      }
      // Over a limit (429), or every candidate failing with a time it may be tried again (503 with retry-after: an
      // open circuit's probe, a parked key): waited for, as a line that could be served later.
      if (gatewayError.status === 429 || (gatewayError.status === 503 && gatewayError.retryAfterMs !== undefined)) {
        return { waitMs: gatewayError.retryAfterMs ?? DEFAULT_RETRY_MS };
      }
      const serverErrors = (active.serverErrors.get(line.index) ?? 0) + 1;
      if (gatewayError.status >= 500 && serverErrors < MAX_SERVER_ERROR_TRIES) {
        active.serverErrors.set(line.index, serverErrors);
        // Alone and off its slot: the pause waited in the slot before, and a batch stalled behind a failing line.
        return { waitMs: gatewayError.retryAfterMs ?? DEFAULT_RETRY_MS * serverErrors, isLineOnly: true };
      }
      await this.#written(active, {
        index: line.index,
        isError: true,
        line: answeredLine(requestId, line.customId, gatewayError.status, requestId, renderError(gatewayError)),
      });
      return;
    }
    if ("waitMs" in answer) return { waitMs: answer.waitMs };
    await this.#written(
      active,
      {
        index: line.index,
        isError: answer.status >= 400,
        line: answeredLine(requestId, line.customId, answer.status, requestId, answer.body),
      },
      answer.body,
    );
  }

  /**
   * The line's request, among the gateway's open requests while the pipeline serves it: an exit that cannot wait for
   * it (a second SIGTERM/SIGINT, the shutdown timeout) ends it through its pipeline as it ends a live request, so it
   * leaves its record before the exit's writes (it was cut without one). Not written as a result: the exit is on,
   * and the line runs again after a restart.
   */
  async #sent(executor: LineExecutor, call: LineCall): Promise<LineAnswer | LineWait> {
    const request = this.#runtime.openRequests.open();
    try {
      return await executor({ ...call, signal: AbortSignal.any([call.signal, request.signal]) });
    } finally {
      this.#runtime.openRequests.close(request);
    }
  }

  /**
   * ms to wait before sending the line: 0 when a candidate is ready now (or the plan cannot say: the pipeline then
   * answers, a line larger than a whole token budget with its 413); else until the soonest candidate frees up. Planned
   * as the line's pipeline will plan it (plan-request.ts batchLineRoute): its prompt's estimate and `max_tokens`
   * count, so a line over what is left of a `tpm` or `tpd` waits here, unsent and without a record. The body checked
   * and its facts go with it to the pipeline, which does not make them again.
   */
  #waitBeforeSending(active: ActiveBatch, endpoint: EndpointSpec, body: unknown): LineCheck {
    let looked: ReturnType<typeof batchLineRoute>;
    try {
      looked = batchLineRoute(this.#runtime, endpoint, body, active.owner === "" ? undefined : active.owner);
    } catch {
      return { waitMs: 0, checked: undefined };
    }
    if (looked === undefined) return { waitMs: 0, checked: undefined };
    const { route, checked } = looked;
    try {
      const clientWaitMs = this.#clientWaitMs(active.owner, route.promptTokens ?? 0);
      if (clientWaitMs > 0) return { waitMs: clientWaitMs, checked };
      const plan = this.#runtime.plan(route);
      if (plan.candidates.length > 0) return { waitMs: 0, checked };
      return { waitMs: this.#runtime.soonestAvailableMs(plan) ?? 0, checked };
    } catch {
      return { waitMs: 0, checked };
    }
  }

  /**
   * ms until the line's client's own budgets (`server.api_keys` limits) admit it as its pipeline charges them
   * (client-budget.ts: one request, its prompt's estimate); 0 with room, without budgets, or never (larger than a
   * whole budget: the pipeline answers the 413).
   */
  #clientWaitMs(owner: string, promptTokens: number): number {
    const scope = owner === "" ? undefined : this.#runtime.snapshot.clientScopes.get(owner);
    if (scope === undefined) return 0;
    const nowMs = this.#runtime.clock.now();
    const verdict = this.#runtime.budgets.check([scope], { tokens: promptTokens }, nowMs);
    if (verdict.isAllowed || isNeverFit(verdict.retryAtMs)) return 0;
    return Math.max(0, verdict.retryAtMs - nowMs);
  }

  /**
   * The line's result, then the batch's counts and usage. A line whose result was already written (by a replica whose
   * lease lapsed while this line ran) counts once: its usage and count are not added again.
   */
  async #written(active: ActiveBatch, result: ResultRow, answer?: unknown): Promise<void> {
    let isKept: boolean;
    try {
      isKept = await this.#books.putResult(active.id, result);
    } catch (error) {
      // Once only logged, the line was then in neither file, for good (a state file locked past its wait, Redis away).
      if (this.#isStopping()) {
        this.#log.warn(
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
    await this.#update(active.id, (batch) =>
      isFinished(batch.status) ? undefined : { ...batch, request_counts: counts, usage: usageOf(batch.usage, added) },
    );
  }

  #keepUnwritten(active: ActiveBatch, kept: UnwrittenResult, error: unknown): void {
    if (!active.unwritten.has(kept.result.index)) this.#unwrittenCount += 1;
    active.unwritten.set(kept.result.index, kept);
    if (this.#unwrittenCount === 1) {
      this.#log.warn(
        { err: error, batchId: active.id },
        "batch: a line's result could not be written; kept in memory and written again, no line starts meanwhile",
      );
    }
    this.#scheduleRewrite();
  }

  #scheduleRewrite(): void {
    if (this.#rewriteTimer !== undefined || this.#isRewriting || this.#isStopping()) return;
    this.#rewriteTimer = setTimeout(() => {
      this.#rewriteTimer = undefined;
      this.#track(this.#rewrite());
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
      for (const active of [...this.#active.values()]) {
        for (const [index, kept] of [...active.unwritten]) {
          if (this.#isStopping()) return;
          // Its lease lost meanwhile (#renewAndTake): its kept results went with it.
          if (active.isSettled) break;
          // This very result may be kept already (its first write landed, but its answer was lost: a timeout, a
          // connection gone): putResult says so, and it counts now. Refused as already written, it counted only in
          // the batch's final counts, one line behind while the batch ran.
          let isKept: boolean;
          try {
            isKept = await this.#books.putResult(active.id, kept.result);
          } catch {
            isRefused = true;
            return;
          }
          if (active.unwritten.delete(index)) this.#unwrittenCount -= 1;
          if (isKept) {
            await this.#counted(active, kept.result, kept.answer).catch((error: unknown) =>
              this.#log.warn({ err: error, batchId: active.id }, "batch: a written line's count update failed"),
            );
          }
        }
        this.#settleIfDone(active);
      }
    } finally {
      this.#isRewriting = false;
      if (isRefused) this.#rewriteDelayMs = Math.min(this.#rewriteDelayMs * 2, MAX_REWRITE_MS);
      else this.#rewriteDelayMs = FIRST_REWRITE_MS;
      if (this.#unwrittenCount > 0) this.#scheduleRewrite();
      else if (!this.#isStopping()) {
        this.#log.info({}, "batch: every kept result is written; lines start again");
        this.#pump();
      }
    }
  }

  /**
   * What the exit leaves unwritten: no row, so those lines run again after a restart (once in the files). `customIds`:
   * finished lines whose result the store refused; `inFlightCustomIds`: lines in flight at the exit, aborted (or
   * answered, their result then refused): they may have been sent and charged already, and are sent again.
   */
  #logUnwrittenAtExit(): void {
    for (const active of this.#active.values()) {
      const inFlight = [...active.unanswered].filter((index) => !active.unwritten.has(index)).sort((a, b) => a - b);
      if (active.unwritten.size === 0 && inFlight.length === 0) continue;
      this.#log.warn(
        {
          batchId: active.id,
          customIds: [...active.unwritten.keys()].map((index) => customIdOf(active, index)),
          inFlightCustomIds: inFlight.map((index) => customIdOf(active, index)),
        },
        "batch: results not written at the exit; these lines run again after a restart",
      );
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
    // Stopping: the lines that returned unwritten are not done; the batch resumes after a restart, never ends here.
    // A result still unwritten: the files would miss its line (#rewrite ends the batch once it is written).
    if (active.inFlight > 0 || active.unwritten.size > 0 || this.#isStopping() || active.isSettled) return;
    let status: "completed" | "cancelled" | "expired";
    if (active.isExpiring) status = "expired";
    else if (active.isCancelling) status = "cancelled";
    else if (active.pending.length > 0 || active.parked.size > 0) return;
    else status = "completed";
    active.isSettled = true;
    this.#active.delete(active.id);
    this.#finishing.add(active.id);
    this.#track(
      this.#finish(active.id, status, status === "expired" ? active.lines : [], active)
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

  /**
   * Writes the output and error files from the lines' results and the batch's final state. `expiredLines`: every
   * line; those without a result get `batch_expired` lines in the error file.
   */
  async #finish(
    id: string,
    status: "completed" | "cancelled" | "expired",
    expiredLines: readonly BatchLine[],
    active: ActiveBatch,
  ): Promise<void> {
    const now = this.#nowSeconds();
    if (status === "completed") {
      await this.#update(id, (batch) =>
        isFinished(batch.status) ? undefined : { ...batch, status: "finalizing", finalizing_at: now },
      );
    }
    const stored = await this.#books.batch(id);
    if (stored === undefined || isFinished(stored.batch.status)) return;
    const answered = new Set<number>();
    const output = new FileParts();
    const errors = new FileParts();
    // A page at a time, with turns of the event loop between: 50,000 results read, joined and written at once froze
    // the gateway for seconds (batches-hostile.test.ts "a large batch's end").
    for await (const page of this.#books.resultPages(id, RESULTS_PAGE_BYTES)) {
      for (const result of page) {
        answered.add(result.index);
        (result.isError ? errors : output).add(result.line);
      }
      await nextTurn();
    }
    let written = 0;
    for (const line of expiredLines) {
      if (answered.has(line.index)) continue;
      errors.add(unansweredLine(randomIds("batch_req_"), line.customId, BATCH_EXPIRED_CODE, BATCH_EXPIRED_MESSAGE));
      if (++written % EXPIRED_LINES_PER_TURN === 0) await nextTurn();
    }
    const outputFileId = await this.#writeFile(stored, output, "output", errors.count > 0 ? 1 : 0);
    const errorFileId = await this.#writeFile(stored, errors, "error", 0);
    const total = active.lines.length;
    const usage = active.usage;
    const final = (batch: BatchObject): BatchObject => ({
      ...batch,
      status,
      output_file_id: outputFileId,
      error_file_id: errorFileId,
      request_counts: {
        total,
        completed: output.count,
        // An expired line counts as failed: it is in the error file.
        failed: errors.count,
      },
      usage: usageOf(batch.usage, usage),
      ...(status === "completed" ? { completed_at: now, finalizing_at: now } : {}),
      ...(status === "cancelled" ? { cancelled_at: now } : {}),
      ...(status === "expired" ? { expired_at: now } : {}),
    });
    const ended = await this.#update(id, (batch) => (isFinished(batch.status) ? undefined : final(batch)));
    // Ended meanwhile by another writer (a replica that took over after this one's lease lapsed): these files are
    // no batch's, and go.
    if (ended === undefined) {
      for (const fileId of [outputFileId, errorFileId]) {
        if (fileId !== null) await this.#books.deleteFile(fileId, stored.owner === "" ? null : stored.owner);
      }
    }
  }

  /** A `batch_output` file of the batch's owner (none for no lines, as OpenAI's `error_file_id` is then null). */
  async #writeFile(
    stored: StoredBatch,
    lines: FileParts,
    kind: "output" | "error",
    filesStillToCome: number,
  ): Promise<string | null> {
    if (lines.count === 0) return null;
    const content = lines.finish();
    const createdAt = this.#nowSeconds();
    const file: StoredFile = {
      id: randomIds("file-"),
      owner: stored.owner,
      bytes: lines.bytes,
      createdAt,
      expiresAt: createdAt + Math.floor(this.#runtime.snapshot.config.batches.retentionMs / 1000),
      filename: `${stored.batch.id}_${kind}.jsonl`,
      purpose: "batch_output",
    };
    await this.#books.addOutputFile(file, content, filesStillToCome);
    return file.id;
  }
}

function customIdOf(active: ActiveBatch, index: number): string | undefined {
  return active.lines[index]?.customId;
}

/** The first ready name after `last` in `order` (from the start again at its end; from the start when `last` is gone). */
function nextInTurn(
  order: readonly string[],
  last: string | undefined,
  isReady: (name: string) => boolean,
): string | undefined {
  const from = last === undefined ? -1 : order.indexOf(last);
  for (let step = 1; step <= order.length; step++) {
    const name = order[(from + step) % order.length];
    if (name !== undefined && isReady(name)) return name;
  }
  return undefined;
}

/** Stops what a batch has left to start (a cancel, its window's end, its lease lost): pending and parked lines. */
function dropWork(active: ActiveBatch): void {
  active.pending.length = 0;
  for (const group of active.parked.values()) clearTimeout(group.timer);
  active.parked.clear();
}

/** The parked key whose time came with the first line, if any (few keys: a batch's models). */
function dueParked(
  active: ActiveBatch,
  nowMs: number,
): { readonly key: string; readonly group: ParkedLines; readonly index: number } | undefined {
  let due: { readonly key: string; readonly group: ParkedLines; readonly index: number } | undefined;
  for (const [key, group] of active.parked) {
    const index = group.indexes[0];
    if (group.untilMs > nowMs || index === undefined) continue;
    if (due === undefined || index < due.index) due = { key, group, index };
  }
  return due;
}

/**
 * The parked key of a line pausing alone (after a 5xx): never a planKey (those are JSON arrays, or ""), so no pending
 * line joins it.
 */
function lineKey(index: number): string {
  return `line:${index}`;
}

/** What a line's plan depends on besides its batch's client: its model and fallbacks. */
function planKey(body: Record<string, unknown> | undefined): string {
  if (body === undefined) return "";
  return JSON.stringify([body.model ?? null, Array.isArray(body.models) ? body.models : null]);
}

/**
 * The line's raw bytes exceed the body limit. Its `body` is only part of the line, so a line up to its wrapper's size
 * (`custom_id`, `method`, `url`: ~100 bytes) over the limit whose body alone is within it is refused too.
 */
function isLineOverLimit(line: BatchLine, bodyLimitBytes: number): boolean {
  return line.end - line.start > bodyLimitBytes;
}

function bodyOrUndefined(input: Buffer, line: BatchLine): Record<string, unknown> | undefined {
  try {
    return lineBody(input, line);
  } catch {
    return undefined;
  }
}

/** Into a sorted list (a line parked again goes back to its place: lines start in the file's order). */
function insertInOrder(indexes: number[], index: number): void {
  let low = 0;
  let high = indexes.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((indexes[middle] ?? 0) < index) low = middle + 1;
    else high = middle;
  }
  indexes.splice(low, 0, index);
}
