// Where the Files and Batch APIs keep their rows: files (facts and bytes), batches, and each batch's finished lines.
// Rows are opaque JSON here (state/ does not import protocols/); pipeline/batch-books.ts gives them their types and
// bounds. In memory, or in the embedded state file (embedded-batch-rows.ts) so a batch survives a restart.

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
  readonly kind: "memory" | "embedded";
  putFile(row: FileRow, content: Buffer): void;
  file(id: string): FileRow | undefined;
  fileContent(id: string): Buffer | undefined;
  /** Oldest first. */
  files(): readonly FileRow[];
  deleteFile(id: string): boolean;
  putBatch(row: BatchRow): void;
  batch(id: string): BatchRow | undefined;
  /** Oldest first. */
  batches(): readonly BatchRow[];
  /** The batch and its results. */
  deleteBatch(id: string): boolean;
  /** Written once per line: a line kept again (a restart racing its write) keeps its first result. */
  putResult(batchId: string, result: ResultRow): void;
  /** In line order. */
  results(batchId: string): readonly ResultRow[];
  close(): void;
}

export class MemoryBatchRows implements BatchRows {
  readonly kind = "memory";
  readonly #files = new Map<string, { row: FileRow; content: Buffer }>();
  readonly #batches = new Map<string, BatchRow>();
  readonly #results = new Map<string, Map<number, ResultRow>>();

  putFile(row: FileRow, content: Buffer): void {
    this.#files.set(row.id, { row, content });
  }
  file(id: string): FileRow | undefined {
    return this.#files.get(id)?.row;
  }
  fileContent(id: string): Buffer | undefined {
    return this.#files.get(id)?.content;
  }
  files(): readonly FileRow[] {
    return [...this.#files.values()].map((entry) => entry.row);
  }
  deleteFile(id: string): boolean {
    return this.#files.delete(id);
  }
  putBatch(row: BatchRow): void {
    this.#batches.set(row.id, row);
  }
  batch(id: string): BatchRow | undefined {
    return this.#batches.get(id);
  }
  batches(): readonly BatchRow[] {
    return [...this.#batches.values()];
  }
  deleteBatch(id: string): boolean {
    this.#results.delete(id);
    return this.#batches.delete(id);
  }
  putResult(batchId: string, result: ResultRow): void {
    const results = this.#results.get(batchId) ?? new Map<number, ResultRow>();
    this.#results.set(batchId, results);
    if (!results.has(result.index)) results.set(result.index, result);
  }
  results(batchId: string): readonly ResultRow[] {
    return [...(this.#results.get(batchId)?.values() ?? [])].sort((a, b) => a.index - b.index);
  }
  close(): void {}
}
