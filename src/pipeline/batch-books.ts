// The Files and Batch APIs' books: typed files and batches over the stored rows (state/batch-rows.ts), each client's
// own (a named client reaches only what it created: 404 for another's, as kept responses), bounded by count
// (`batches.max_files`, `batches.max_batches`: the oldest go first, never a batch still running nor a file one
// reads; every file counts, and each unfinished batch keeps room for its two result files) and by age
// (`batches.retention_ms`).
import type { Clock } from "../clock.ts";
import type { BatchSettings } from "../config/types.ts";
import { type BatchObject, isFinished, type StoredBatch, type StoredFile } from "../protocols/batches/batch-objects.ts";
import type { BatchRows, ResultRow } from "../state/batch-rows.ts";
import { unavailableOnFailure } from "./unavailable-batch-rows.ts";

/** The owner column of a key without a name (or no key): "". */
export function ownerOf(client: string | null | undefined): string {
  return client ?? "";
}

export class BatchBooks {
  readonly #rows: BatchRows;
  readonly #clock: Clock;
  #settings: () => BatchSettings;

  constructor(rows: BatchRows, clock: Clock, settings: () => BatchSettings) {
    this.#rows = rows.isShared ? unavailableOnFailure(rows) : rows;
    this.#clock = clock;
    this.#settings = settings;
  }

  get kind(): BatchRows["kind"] {
    return this.#rows.kind;
  }

  /** Other gateway processes share these books (Redis): batches run under a lease (batch-runner.ts). */
  get isShared(): boolean {
    return this.#rows.isShared;
  }

  /**
   * An upload: kept when `batches.max_files` holds with it (see #makeRoom); false when it would not, even with every
   * file that may go gone. One writer at a time across the replicas: the bound is read, then rows deleted and added.
   */
  addFile(file: StoredFile, content: Buffer): Promise<boolean> {
    return this.#rows.exclusive(async () => {
      await this.#prune();
      const evicted = await this.#roomFor({ newFiles: 1 });
      if (evicted === undefined) return false;
      // Written first: an upload that fails (the state file locked past its wait, a full disk) must not have cost
      // the files it would have pushed out (until 2026-12-06 they were deleted before, and lost with a 503).
      await this.#putFile(file, content);
      await this.#evict(evicted);
      return true;
    });
  }

  /**
   * A batch's output or error file, written at its end: never refused (the results would be lost). Its room was kept
   * when the batch was created (#makeRoom reserves two files per unfinished batch), so the bound holds; only a reload
   * that lowered `max_files` meanwhile lets it be passed, until the next files go.
   */
  addOutputFile(file: StoredFile, content: readonly Buffer[], filesStillToCome: number): Promise<void> {
    return this.#rows.exclusive(async () => {
      await this.#prune();
      const evicted = await this.#roomFor({ newFiles: 1, ownStillToCome: filesStillToCome });
      await this.#putFile(file, content);
      await this.#evict(evicted ?? []);
    });
  }

  #putFile(file: StoredFile, content: Buffer | readonly Buffer[]): Promise<void> {
    return this.#rows.putFile(
      { id: file.id, owner: file.owner, createdAtMs: file.createdAt * 1000, json: JSON.stringify(file) },
      content,
    );
  }

  /**
   * The files to delete to make room within `batches.max_files` for `newFiles` more files, or for a new unfinished
   * batch reading `newBatchInput`: every file counts (uploads, output and error files), and each unfinished batch
   * holds room for the two files its end writes (output, error), so that an end never pushes the count past the
   * bound. The oldest files no unfinished batch reads go first; undefined when even then there is no room: every file
   * left is a running batch's input. `ownStillToCome`: a batch's result file is being written (never refused); that
   * batch, still unfinished, reserves only the files it writes after this one instead of two. Nothing is deleted
   * here: the caller deletes them (`#evict`) once what needed the room is written.
   */
  async #roomFor(room: {
    newFiles?: number;
    newBatchInput?: string;
    ownStillToCome?: number;
  }): Promise<readonly string[] | undefined> {
    const files = await this.#rows.files();
    const inUse = await this.#filesInUse();
    if (room.newBatchInput !== undefined) inUse.add(room.newBatchInput);
    const running = (await this.#unfinishedCount()) + (room.newBatchInput === undefined ? 0 : 1);
    const reserved =
      room.ownStillToCome === undefined ? 2 * running : 2 * Math.max(0, running - 1) + room.ownStillToCome;
    const over = files.length + (room.newFiles ?? 0) + reserved - this.#settings().maxFiles;
    const evictable = files.filter((row) => !inUse.has(row.id));
    if (room.ownStillToCome === undefined && over > evictable.length) return undefined;
    return evictable.slice(0, Math.max(0, over)).map((row) => row.id);
  }

  /**
   * Deletes the files a write made room for, after it. One that cannot be deleted now (the state file locked past its
   * wait, Redis unreachable) stays, over the bound by one, until the next write's `#roomFor` counts it again: the
   * write it made room for is done, and answering it as failed would have its client write it twice.
   */
  #evict(ids: readonly string[]): Promise<void> {
    return afterTheWrite(ids, (id) => this.#rows.deleteFile(id));
  }

  async #unfinishedCount(): Promise<number> {
    let count = 0;
    for (const row of await this.#rows.batches()) {
      if (!isFinished((JSON.parse(row.json) as BatchObject).status)) count += 1;
    }
    return count;
  }

  /** The file when `client` may see it. */
  async file(id: string, client: string | null | undefined): Promise<StoredFile | undefined> {
    const row = await this.#rows.file(id);
    if (row === undefined || row.owner !== ownerOf(client)) return undefined;
    const file = JSON.parse(row.json) as StoredFile;
    return file.expiresAt * 1000 <= this.#clock.now() ? undefined : file;
  }

  async fileContent(id: string, client: string | null | undefined): Promise<Buffer | undefined> {
    return (await this.file(id, client)) === undefined ? undefined : this.#rows.fileContent(id);
  }

  /** True when the books hold no file and no batch of anyone's (then no runner is needed until one is created). */
  async isEmpty(): Promise<boolean> {
    return (await this.#rows.files()).length === 0 && (await this.#rows.batches()).length === 0;
  }

  /** The client's files, oldest first. */
  async files(client: string | null | undefined): Promise<readonly StoredFile[]> {
    const owner = ownerOf(client);
    const nowMs = this.#clock.now();
    return (await this.#rows.files())
      .filter((row) => row.owner === owner)
      .map((row) => JSON.parse(row.json) as StoredFile)
      .filter((file) => file.expiresAt * 1000 > nowMs);
  }

  /**
   * A batch's input file, for its runner: expired or not (its `expires_at` passed while the batch ran, with a
   * `retention_ms` shorter than the window: prune keeps it, and a restart must still read it).
   */
  async inputContent(id: string, owner: string): Promise<Buffer | undefined> {
    const row = await this.#rows.file(id);
    return row === undefined || row.owner !== owner ? undefined : this.#rows.fileContent(id);
  }

  /** The id of a batch not finished whose input the file is (it may not be deleted under it). */
  async runningBatchOf(fileId: string): Promise<string | undefined> {
    for (const row of await this.#rows.batches()) {
      const batch = JSON.parse(row.json) as BatchObject;
      if (!isFinished(batch.status) && batch.input_file_id === fileId) return batch.id;
    }
    return undefined;
  }

  async deleteFile(id: string, client: string | null | undefined): Promise<boolean> {
    if ((await this.file(id, client)) === undefined) return false;
    return this.#rows.deleteFile(id);
  }

  putBatch(stored: StoredBatch): Promise<void> {
    return this.#rows.putBatch(batchRow(stored));
  }

  /**
   * Writes `stored` only if the kept batch is still `expected` (compare and set, batch-rows.ts `replaceBatch`); false
   * when another writer (a cancel on another replica) changed it since it was read.
   */
  replaceBatch(stored: StoredBatch, expected: BatchObject): Promise<boolean> {
    return this.#rows.replaceBatch(batchRow(stored), JSON.stringify(expected));
  }

  /**
   * A new batch: the oldest finished ones go first when the books are full. Refused when all are running
   * (`"batches"`), or when `batches.max_files` has no room left for the two files its end writes (`"files"`).
   */
  addBatch(stored: StoredBatch): Promise<"added" | "batches" | "files"> {
    return this.#rows.exclusive(async () => {
      await this.#prune();
      const rows = await this.#rows.batches();
      const over = rows.length + 1 - this.#settings().maxBatches;
      const finished = rows.filter((row) => isFinished((JSON.parse(row.json) as BatchObject).status));
      if (over > finished.length) return "batches";
      const evicted = await this.#roomFor({ newBatchInput: stored.batch.input_file_id });
      if (evicted === undefined) return "files";
      // Written first, as an upload: a create that fails costs no batch nor file.
      await this.putBatch(stored);
      await this.#evict(evicted);
      const oldest = finished.slice(0, Math.max(0, over)).map((row) => row.id);
      await afterTheWrite(oldest, (id) => this.#rows.deleteBatch(id));
      return "added";
    });
  }

  /** The batch when `client` may see it; `undefined` client: any owner's (the runner's own reads). */
  async batch(id: string, client?: string | null): Promise<StoredBatch | undefined> {
    const row = await this.#rows.batch(id);
    if (row === undefined) return undefined;
    if (client !== undefined && row.owner !== ownerOf(client)) return undefined;
    return { batch: JSON.parse(row.json) as BatchObject, owner: row.owner };
  }

  /** Every batch (oldest first); with `client`, only its own. */
  async batches(client?: string | null): Promise<readonly StoredBatch[]> {
    return (await this.#rows.batches())
      .filter((row) => client === undefined || row.owner === ownerOf(client))
      .map((row) => ({ batch: JSON.parse(row.json) as BatchObject, owner: row.owner }));
  }

  /** Ids of the batches not finished, whoever runs them (a replica's look for batches to take over). */
  async runnableIds(): Promise<readonly string[]> {
    if (this.#rows.runnableBatchIds !== undefined) return this.#rows.runnableBatchIds();
    return (await this.batches()).filter((stored) => !isFinished(stored.batch.status)).map((stored) => stored.batch.id);
  }

  /**
   * True when the line's result kept is this one (a line has one, whoever wrote it first): written now, or by an
   * earlier write of it whose answer was lost (batch-rows.ts `putResult`).
   */
  putResult(batchId: string, result: ResultRow): Promise<boolean> {
    return this.#rows.putResult(batchId, result);
  }

  /** Every result of the batch, a page at a time (batch-rows.ts `resultPages`). */
  resultPages(batchId: string, pageBytes: number): AsyncGenerator<readonly ResultRow[]> {
    return this.#rows.resultPages(batchId, pageBytes);
  }

  takeLease(batchId: string, holder: string, ttlMs: number): Promise<boolean> {
    return this.#rows.takeLease(batchId, holder, ttlMs);
  }

  dropLease(batchId: string, holder: string): Promise<void> {
    return this.#rows.dropLease(batchId, holder);
  }

  /**
   * Shared books: `listener` hears of a batch this replica may take now (another replica created it or gave it up;
   * undefined: look at them all). Without sharing, never called: this process runs its own batches.
   */
  onRunnable(listener: (batchId: string | undefined) => void): void {
    this.#rows.onRunnable?.(listener);
  }

  /** Removes what is older than `batches.retention_ms` (a file past its `expires_at`; a finished batch). */
  prune(): Promise<void> {
    return this.#rows.exclusive(() => this.#prune());
  }

  async #prune(): Promise<void> {
    const nowMs = this.#clock.now();
    const retentionMs = this.#settings().retentionMs;
    for (const row of await this.#rows.batches()) {
      const batch = JSON.parse(row.json) as BatchObject;
      if (isFinished(batch.status) && row.createdAtMs + retentionMs <= nowMs) await this.#rows.deleteBatch(row.id);
    }
    const inUse = await this.#filesInUse();
    for (const row of await this.#rows.files()) {
      const file = JSON.parse(row.json) as StoredFile;
      if (file.expiresAt * 1000 <= nowMs && !inUse.has(row.id)) await this.#rows.deleteFile(row.id);
    }
  }

  /** Input files of batches still running: never evicted under them. */
  async #filesInUse(): Promise<Set<string>> {
    const inUse = new Set<string>();
    for (const row of await this.#rows.batches()) {
      const batch = JSON.parse(row.json) as BatchObject;
      if (!isFinished(batch.status)) inUse.add(batch.input_file_id);
    }
    return inUse;
  }

  close(): Promise<void> {
    return this.#rows.close();
  }
}

/** Deletes, in order, what a write made room for; stops at the first that fails (see BatchBooks #evict). */
async function afterTheWrite(ids: readonly string[], remove: (id: string) => Promise<unknown>): Promise<void> {
  for (const id of ids) {
    try {
      await remove(id);
    } catch {
      return;
    }
  }
}

function batchRow(stored: StoredBatch) {
  return {
    id: stored.batch.id,
    owner: stored.owner,
    createdAtMs: stored.batch.created_at * 1000,
    json: JSON.stringify(stored.batch),
  };
}
