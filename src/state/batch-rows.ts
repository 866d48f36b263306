// Where the Files and Batch APIs keep their rows: files (facts and bytes), batches, and each batch's finished lines.
// Rows are opaque JSON here (state/ does not import protocols/); pipeline/batch-books.ts gives them their types and
// bounds. In memory, in the embedded state file (embedded-batch-rows.ts) so a batch survives a restart, or in Redis
// (redis-batch-rows.ts) shared by every replica, which then run each batch under a lease.

export interface FileRow {
  readonly id: string;
  readonly owner: string;
  readonly createdAtMs: number;
  readonly json: string;
}

export interface BatchRow {
  readonly id: string;
  readonly owner: string;
  readonly createdAtMs: number;
  readonly json: string;
}

/** A finished line of a batch: its output-file line (`isError` false) or error-file line. */
export interface ResultRow {
  readonly index: number;
  readonly isError: boolean;
  readonly line: string;
}

export interface BatchRows {
  readonly kind: "memory" | "embedded" | "redis";
  /**
   * True when other gateway processes share these rows (Redis): a batch is run by the replica holding its lease,
   * and the runner looks for batches it should take over.
   */
  readonly isShared: boolean;
  /** `content` in parts (a batch's output file, built a piece at a time): written as they are, never joined here. */
  putFile(row: FileRow, content: Buffer | readonly Buffer[]): Promise<void>;
  file(id: string): Promise<FileRow | undefined>;
  fileContent(id: string): Promise<Buffer | undefined>;
  /** Oldest first. */
  files(): Promise<readonly FileRow[]>;
  deleteFile(id: string): Promise<boolean>;
  putBatch(row: BatchRow): Promise<void>;
  /**
   * Writes `row` only if the kept batch's JSON is still `expectedJson` (compare and set): a cancel made on another
   * replica is never written over by the runner's count update; false when it changed or is gone.
   */
  replaceBatch(row: BatchRow, expectedJson: string): Promise<boolean>;
  batch(id: string): Promise<BatchRow | undefined>;
  /** Oldest first. */
  batches(): Promise<readonly BatchRow[]>;
  /** Ids of the batches not finished (what a replica may have to take over); undefined: read `batches()`. */
  runnableBatchIds?(): Promise<readonly string[]>;
  /** The batch and its results. */
  deleteBatch(id: string): Promise<boolean>;
  /**
   * Written once per line: a line kept again (a restart racing its write, two replicas after a lapsed lease) keeps its
   * first result. True when the result kept is this one: written by this call, or by an earlier call with this same
   * result whose answer was lost (a Redis write that timed out, or whose connection went, after it landed: the runner
   * writes it again, and counts the line then, once). False when the line has another result.
   */
  putResult(batchId: string, result: ResultRow): Promise<boolean>;
  /**
   * Every result in line order (every store: the output and error files list lines as the input file does), about
   * `pageBytes` of lines at a time (each page's count from the lines read so far), each page read
   * when the one before was taken: a batch's end reads 50,000 results without one long read (the state file's reads
   * are synchronous: 500 answers of 24 KB took 150 ms to 500 ms on a busy machine).
   */
  resultPages(batchId: string, pageBytes: number): AsyncGenerator<readonly ResultRow[]>;
  /**
   * Runs `work` alone among the writers of these rows (every replica's, with Redis): the count bounds read the rows,
   * then delete and add, which two writers at once would overshoot or double.
   */
  exclusive<T>(work: () => Promise<T>): Promise<T>;
  /**
   * The right to run a batch for `ttlMs`: taken when no one holds it, renewed when `holder` does; false when another
   * holds it. Without sharing, always true (the one process runs its batches).
   */
  takeLease(batchId: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Given up (a batch finished, a graceful exit): another replica may take it at once. */
  dropLease(batchId: string, holder: string): Promise<void>;
  /**
   * Shared rows only: `listener` hears of a batch another replica may take now (a new one, a lease given up), by id;
   * undefined: something may have been missed (the subscription was away), look at every unfinished batch.
   */
  onRunnable?(listener: (batchId: string | undefined) => void): void;
  close(): Promise<void>;
}

/** Lines per page of `resultPages`: about `pageBytes` of lines, from the mean length of those read so far. */
export class PageSize {
  static readonly FIRST_LINES = 32;
  static readonly MAX_LINES = 2_000;
  readonly #pageBytes: number;
  #lines = 0;
  #bytes = 0;

  constructor(pageBytes: number) {
    this.#pageBytes = pageBytes;
  }

  get lines(): number {
    if (this.#lines === 0) return PageSize.FIRST_LINES;
    const meanBytes = Math.max(1, this.#bytes / this.#lines);
    return Math.max(1, Math.min(PageSize.MAX_LINES, Math.floor(this.#pageBytes / meanBytes)));
  }

  saw(page: readonly ResultRow[]): void {
    this.#lines += page.length;
    for (const result of page) this.#bytes += result.line.length;
  }
}

/** One writer at a time in this process: the rest wait their turn, in order. */
export class LocalMutex {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(work, work);
    this.#tail = result.catch(() => {});
    return result;
  }
}

export class MemoryBatchRows implements BatchRows {
  readonly kind = "memory";
  readonly isShared = false;
  readonly #files = new Map<string, { row: FileRow; content: Buffer }>();
  readonly #batches = new Map<string, BatchRow>();
  readonly #results = new Map<string, Map<number, ResultRow>>();
  readonly #mutex = new LocalMutex();

  async putFile(row: FileRow, content: Buffer | readonly Buffer[]): Promise<void> {
    this.#files.set(row.id, { row, content: Buffer.isBuffer(content) ? content : Buffer.concat(content) });
  }
  async file(id: string): Promise<FileRow | undefined> {
    return this.#files.get(id)?.row;
  }
  async fileContent(id: string): Promise<Buffer | undefined> {
    return this.#files.get(id)?.content;
  }
  async files(): Promise<readonly FileRow[]> {
    return [...this.#files.values()].map((entry) => entry.row);
  }
  async deleteFile(id: string): Promise<boolean> {
    return this.#files.delete(id);
  }
  async putBatch(row: BatchRow): Promise<void> {
    this.#batches.set(row.id, row);
  }
  async replaceBatch(row: BatchRow, expectedJson: string): Promise<boolean> {
    if (this.#batches.get(row.id)?.json !== expectedJson) return false;
    this.#batches.set(row.id, row);
    return true;
  }
  async batch(id: string): Promise<BatchRow | undefined> {
    return this.#batches.get(id);
  }
  async batches(): Promise<readonly BatchRow[]> {
    return [...this.#batches.values()];
  }
  async deleteBatch(id: string): Promise<boolean> {
    this.#results.delete(id);
    return this.#batches.delete(id);
  }
  async putResult(batchId: string, result: ResultRow): Promise<boolean> {
    const results = this.#results.get(batchId) ?? new Map<number, ResultRow>();
    this.#results.set(batchId, results);
    const kept = results.get(result.index);
    if (kept !== undefined) return kept.isError === result.isError && kept.line === result.line;
    results.set(result.index, result);
    return true;
  }
  async *resultPages(batchId: string, pageBytes: number): AsyncGenerator<readonly ResultRow[]> {
    const all = [...(this.#results.get(batchId)?.values() ?? [])].sort((a, b) => a.index - b.index);
    const size = new PageSize(pageBytes);
    for (let from = 0; from < all.length; ) {
      const page = all.slice(from, from + size.lines);
      from += page.length;
      size.saw(page);
      yield page;
    }
  }
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.#mutex.run(work);
  }
  async takeLease(): Promise<boolean> {
    return true;
  }
  async dropLease(): Promise<void> {}
  async close(): Promise<void> {}
}
