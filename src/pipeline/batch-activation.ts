// A batch taken to run: its input file read (one Buffer for every batch of the file), its lines checked as OpenAI
// checks them (in steps that let live requests through), what a restart or takeover resumes from, and its start.
import { MAX_JSON_DEPTH, MAX_JSON_OBJECT_MEMBERS } from "../config/request-bounds.ts";
import {
  type BatchEndpoint,
  type BatchErrorEntry,
  checkingBatchInput,
  type InputCheck,
  isFinished,
  type StoredBatch,
} from "../protocols/batches/batch-objects.ts";
import { type ActiveBatch, type BatchSteps, RESULTS_PAGE_BYTES } from "./active-batch.ts";
import { nextTurn } from "./batch-lines.ts";

/** A batch line's JSON is bounded as a live request's body is (server/json-body.ts). */
const LINE_BOUNDS = { maxDepth: MAX_JSON_DEPTH, maxMembers: MAX_JSON_OBJECT_MEMBERS };

/** The error entry of a batch whose input file was deleted before it ran. */
const INPUT_FILE_GONE = "invalid_file";

export class BatchActivator {
  readonly #steps: BatchSteps;
  /** Input files' bytes while a batch holds them (inputOf); an id whose Buffer was collected is read again. */
  readonly #inputs = new Map<string, WeakRef<Buffer>>();
  /** Input files being read (inputOf): batches of one file submitted together share the read. */
  readonly #reading = new Map<string, Promise<Buffer | undefined>>();

  constructor(steps: BatchSteps) {
    this.#steps = steps;
  }

  /**
   * The batch's lines from its input file, checked (OpenAI's validation) in steps that let live requests through;
   * undefined when it ended here, or meanwhile (cancelled while it was checked, the gateway stopping).
   */
  async activate(submitted: StoredBatch): Promise<ActiveBatch | undefined> {
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
    const stored = await this.#steps.books.batch(submitted.batch.id);
    if (checked === undefined || stored === undefined || isFinished(stored.batch.status)) return undefined;
    const { batch } = stored;
    if (!checked.isValid) {
      await this.#fail(stored, checked.errors);
      return undefined;
    }
    // What a restart or a takeover resumes from, read a page at a time as at the batch's end (#finish).
    const done = new Set<number>();
    let completed = 0;
    for await (const page of this.#steps.books.resultPages(batch.id, RESULTS_PAGE_BYTES)) {
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
    if (!active.isCancelling && batch.expires_at <= this.#steps.nowSeconds()) {
      active.isExpiring = true;
      active.pending.length = 0;
    }
    if (batch.status === "validating") {
      const started = await this.#steps.update(batch.id, (kept) =>
        kept.status !== "validating"
          ? undefined
          : {
              ...kept,
              status: "in_progress",
              in_progress_at: this.#steps.nowSeconds(),
              model: checked.model,
              request_counts: { total: checked.lines.length, completed: 0, failed: 0 },
            },
      );
      // Cancelled meanwhile (on another replica): it ends at once, as cancelled.
      if (started === undefined && (await this.#steps.books.batch(batch.id))?.batch.status === "cancelling") {
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
    const read = this.#steps.books.inputContent(fileId, owner).then((content) => {
      if (content === undefined) this.#inputs.delete(fileId);
      else this.#inputs.set(fileId, new WeakRef(content));
      return content;
    });
    this.#reading.set(fileId, read);
    return read.finally(() => this.#reading.delete(fileId));
  }

  /** checkingBatchInput, its steps spread over turns of the event loop; undefined when the gateway stops meanwhile. */
  async #checkInput(input: Buffer, endpoint: BatchEndpoint): Promise<InputCheck | undefined> {
    const steps = checkingBatchInput(
      input,
      endpoint,
      this.#steps.runtime.snapshot.config.batches.maxLines,
      LINE_BOUNDS,
    );
    for (;;) {
      const step = steps.next();
      if (step.done === true) return step.value;
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.#steps.isStopping()) return undefined;
    }
  }

  async #fail(stored: StoredBatch, errors: readonly BatchErrorEntry[]): Promise<void> {
    await this.#steps.update(stored.batch.id, (batch) =>
      isFinished(batch.status)
        ? undefined
        : { ...batch, status: "failed", failed_at: this.#steps.nowSeconds(), errors: { object: "list", data: errors } },
    );
  }
}
