// The Files and Batch APIs' books: typed files and batches over the stored rows (state/batch-rows.ts), each client's
// own (a named client reaches only what it created: 404 for another's, as kept responses), bounded by count
// (`batches.max_files`, `batches.max_batches`: the oldest go first, never a batch still running nor a file one
// reads) and by age (`batches.retention_ms`).
import type { Clock } from "../clock.ts";
import type { BatchSettings } from "../config/types.ts";
import { type BatchObject, isFinished, type StoredBatch, type StoredFile } from "../protocols/batches/batch-objects.ts";
import type { BatchRows, ResultRow } from "../state/batch-rows.ts";

/** The owner column of a key without a name (or no key): "". */
export function ownerOf(client: string | null | undefined): string {
  return client ?? "";
}

export class BatchBooks {
  readonly #rows: BatchRows;
  readonly #clock: Clock;
  #settings: () => BatchSettings;

  constructor(rows: BatchRows, clock: Clock, settings: () => BatchSettings) {
    this.#rows = rows;
    this.#clock = clock;
    this.#settings = settings;
  }

  get kind(): BatchRows["kind"] {
    return this.#rows.kind;
  }

  addFile(file: StoredFile, content: Buffer): void {
    this.prune();
    const files = this.#rows.files();
    let over = files.length + 1 - this.#settings().maxFiles;
    const inUse = this.#filesInUse();
    for (const row of files) {
      if (over <= 0) break;
      if (inUse.has(row.id)) continue;
      this.#rows.deleteFile(row.id);
      over -= 1;
    }
    this.#rows.putFile(
      { id: file.id, owner: file.owner, createdAtMs: file.createdAt * 1000, json: JSON.stringify(file) },
      content,
    );
  }

  /** The file when `client` may see it. */
  file(id: string, client: string | null | undefined): StoredFile | undefined {
    const row = this.#rows.file(id);
    if (row === undefined || row.owner !== ownerOf(client)) return undefined;
    const file = JSON.parse(row.json) as StoredFile;
    return file.expiresAt * 1000 <= this.#clock.now() ? undefined : file;
  }

  fileContent(id: string, client: string | null | undefined): Buffer | undefined {
    return this.file(id, client) === undefined ? undefined : this.#rows.fileContent(id);
  }

  /** The client's files, oldest first. */
  files(client: string | null | undefined): readonly StoredFile[] {
    const owner = ownerOf(client);
    const nowMs = this.#clock.now();
    return this.#rows
      .files()
      .filter((row) => row.owner === owner)
      .map((row) => JSON.parse(row.json) as StoredFile)
      .filter((file) => file.expiresAt * 1000 > nowMs);
  }

  /**
   * A batch's input file, for its runner: expired or not (its `expires_at` passed while the batch ran, with a
   * `retention_ms` shorter than the window: prune keeps it, and a restart must still read it).
   */
  inputContent(id: string, owner: string): Buffer | undefined {
    const row = this.#rows.file(id);
    return row === undefined || row.owner !== owner ? undefined : this.#rows.fileContent(id);
  }

  /** The id of a batch not finished whose input the file is (it may not be deleted under it). */
  runningBatchOf(fileId: string): string | undefined {
    for (const row of this.#rows.batches()) {
      const batch = JSON.parse(row.json) as BatchObject;
      if (!isFinished(batch.status) && batch.input_file_id === fileId) return batch.id;
    }
    return undefined;
  }

  deleteFile(id: string, client: string | null | undefined): boolean {
    if (this.file(id, client) === undefined) return false;
    return this.#rows.deleteFile(id);
  }

  putBatch(stored: StoredBatch): void {
    this.#rows.putBatch({
      id: stored.batch.id,
      owner: stored.owner,
      createdAtMs: stored.batch.created_at * 1000,
      json: JSON.stringify(stored.batch),
    });
  }

  /** A new batch: the oldest finished ones go first when the books are full; refused (false) when all are running. */
  addBatch(stored: StoredBatch): boolean {
    this.prune();
    const rows = this.#rows.batches();
    let over = rows.length + 1 - this.#settings().maxBatches;
    for (const row of rows) {
      if (over <= 0) break;
      if (!isFinished((JSON.parse(row.json) as BatchObject).status)) continue;
      this.#rows.deleteBatch(row.id);
      over -= 1;
    }
    if (over > 0) return false;
    this.putBatch(stored);
    return true;
  }

  /** The batch when `client` may see it; `undefined` client: any owner's (the runner's own reads). */
  batch(id: string, client?: string | null): StoredBatch | undefined {
    const row = this.#rows.batch(id);
    if (row === undefined) return undefined;
    if (client !== undefined && row.owner !== ownerOf(client)) return undefined;
    return { batch: JSON.parse(row.json) as BatchObject, owner: row.owner };
  }

  /** Every batch (oldest first); with `client`, only its own. */
  batches(client?: string | null): readonly StoredBatch[] {
    return this.#rows
      .batches()
      .filter((row) => client === undefined || row.owner === ownerOf(client))
      .map((row) => ({ batch: JSON.parse(row.json) as BatchObject, owner: row.owner }));
  }

  putResult(batchId: string, result: ResultRow): void {
    this.#rows.putResult(batchId, result);
  }

  results(batchId: string): readonly ResultRow[] {
    return this.#rows.results(batchId);
  }

  /** Removes what is older than `batches.retention_ms` (a file past its `expires_at`; a finished batch). */
  prune(): void {
    const nowMs = this.#clock.now();
    const retentionMs = this.#settings().retentionMs;
    for (const row of this.#rows.batches()) {
      const batch = JSON.parse(row.json) as BatchObject;
      if (isFinished(batch.status) && row.createdAtMs + retentionMs <= nowMs) this.#rows.deleteBatch(row.id);
    }
    const inUse = this.#filesInUse();
    for (const row of this.#rows.files()) {
      const file = JSON.parse(row.json) as StoredFile;
      if (file.expiresAt * 1000 <= nowMs && !inUse.has(row.id)) this.#rows.deleteFile(row.id);
    }
  }

  /** Input files of batches still running: never evicted under them. */
  #filesInUse(): Set<string> {
    const inUse = new Set<string>();
    for (const row of this.#rows.batches()) {
      const batch = JSON.parse(row.json) as BatchObject;
      if (!isFinished(batch.status)) inUse.add(batch.input_file_id);
    }
    return inUse;
  }

  close(): void {
    this.#rows.close();
  }
}
