// The Files and Batch APIs' rows in the embedded state file (`state.path`, node:sqlite), in tables of their own, and
// the files' bytes in a folder next to it (`<state.path>.files/`, owner-only): a batch in progress resumes after a
// restart from the lines not yet written here (each line's result is one row, written when it finishes).
//
// node:sqlite is synchronous: a statement that waited for a lock another process holds on the file (SQLite's busy
// timeout, 2 s) held the event loop, and every request of the gateway, for that long. Every statement here runs with
// no busy wait and is tried again by a timer while the file is locked (`whenUnlocked`), up to LOCK_WAIT_MS.
import { once } from "node:events";
import { createWriteStream, mkdirSync, readFile as readFileCallback, rmSync } from "node:fs";
import { join } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { promisify } from "node:util";
import { isBusyError, openSqliteFile, whenUnlocked } from "../sqlite-file.ts";
import { type BatchRow, type BatchRows, type FileRow, LocalMutex, PageSize, type ResultRow } from "./batch-rows.ts";
import { lockedAsUnavailable } from "./state-file-locked.ts";

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS batch_files (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at_ms INTEGER NOT NULL, json TEXT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at_ms INTEGER NOT NULL, json TEXT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS batch_results (
    batch_id TEXT NOT NULL, line_index INTEGER NOT NULL, is_error INTEGER NOT NULL, line TEXT NOT NULL,
    PRIMARY KEY (batch_id, line_index)
  );
`;

/** Off the event loop, from the callback API as async-fs.ts does (state/ does not import the root's files). */
const readFile = promisify(readFileCallback);

/** Only the gateway's user may read uploaded prompts and their answers. */
const FOLDER_MODE = 0o700;
const FILE_MODE = 0o600;

/**
 * ms a statement is tried again while another process holds the file's lock (the event loop serves meanwhile); past
 * it the call fails with a 503 (a route's client tries again; a batch line's result that still cannot be written is
 * logged by the runner and missing from the batch's files, as with any store failure).
 */
const LOCK_WAIT_MS = 5_000;

/** File ids are the gateway's own (`file-` and hex): anything else never names a path. */
const SAFE_ID = /^file-[0-9a-f]+$/;

export class EmbeddedBatchRows implements BatchRows {
  readonly kind = "embedded";
  readonly isShared = false;
  readonly #mutex = new LocalMutex();
  readonly #db: DatabaseSync;
  readonly #folder: string;
  readonly #statements: Record<string, StatementSync>;

  constructor(statePath: string) {
    // Made at the first upload: a gateway that never serves a batch leaves no folder next to its state file.
    this.#folder = `${statePath}.files`;
    this.#db = openSqliteFile(statePath);
    this.#db.exec(SCHEMA);
    // After the schema (the start may wait for the lock): from here on nothing waits inside a call.
    this.#db.exec("PRAGMA busy_timeout = 0");
    const prepare = (sql: string): StatementSync => this.#db.prepare(sql);
    this.#statements = {
      putFile: prepare("INSERT OR REPLACE INTO batch_files (id, owner, created_at_ms, json) VALUES (?, ?, ?, ?)"),
      file: prepare("SELECT id, owner, created_at_ms, json FROM batch_files WHERE id = ?"),
      files: prepare("SELECT id, owner, created_at_ms, json FROM batch_files ORDER BY created_at_ms, rowid"),
      deleteFile: prepare("DELETE FROM batch_files WHERE id = ?"),
      putBatch: prepare("INSERT OR REPLACE INTO batches (id, owner, created_at_ms, json) VALUES (?, ?, ?, ?)"),
      batch: prepare("SELECT id, owner, created_at_ms, json FROM batches WHERE id = ?"),
      batches: prepare("SELECT id, owner, created_at_ms, json FROM batches ORDER BY created_at_ms, rowid"),
      replaceBatch: prepare("UPDATE batches SET json = ? WHERE id = ? AND json = ?"),
      deleteBatch: prepare("DELETE FROM batches WHERE id = ?"),
      deleteResults: prepare("DELETE FROM batch_results WHERE batch_id = ?"),
      putResult: prepare(
        "INSERT OR IGNORE INTO batch_results (batch_id, line_index, is_error, line) VALUES (?, ?, ?, ?)",
      ),
      resultOf: prepare("SELECT line_index, is_error, line FROM batch_results WHERE batch_id = ? AND line_index = ?"),
      resultPage: prepare(
        "SELECT line_index, is_error, line FROM batch_results WHERE batch_id = ? AND line_index > ? ORDER BY line_index LIMIT ?",
      ),
    };
  }

  #path(id: string): string {
    if (!SAFE_ID.test(id)) throw new Error(`not a file id: ${id.slice(0, 100)}`);
    return join(this.#folder, id);
  }

  async putFile(row: FileRow, content: Buffer | readonly Buffer[]): Promise<void> {
    mkdirSync(this.#folder, { recursive: true, mode: FOLDER_MODE });
    // The bytes first: a row never names a file that is not there. Written off the event loop (libuv's threads), a
    // part at a time: a 100 MB upload or a 50,000-line output file written at once froze every request meanwhile.
    await writeParts(this.#path(row.id), Buffer.isBuffer(content) ? [content] : content);
    try {
      await this.#unlocked(() => this.#statements.putFile?.run(row.id, row.owner, row.createdAtMs, row.json), true);
    } catch (error) {
      rmSync(this.#path(row.id), { force: true }); // no row names it: nothing would ever delete it
      throw error;
    }
  }

  async file(id: string): Promise<FileRow | undefined> {
    return toRow(await this.#unlocked(() => this.#statements.file?.get(id)));
  }

  async fileContent(id: string): Promise<Buffer | undefined> {
    if ((await this.file(id)) === undefined) return undefined;
    try {
      return await readFile(this.#path(id));
    } catch {
      return undefined;
    }
  }

  async files(): Promise<readonly FileRow[]> {
    return ((await this.#unlocked(() => this.#statements.files?.all())) ?? []).flatMap((row) => toRow(row) ?? []);
  }

  async deleteFile(id: string): Promise<boolean> {
    const changes = Number((await this.#unlocked(() => this.#statements.deleteFile?.run(id), true))?.changes ?? 0);
    if (SAFE_ID.test(id)) rmSync(join(this.#folder, id), { force: true });
    return changes > 0;
  }

  async putBatch(row: BatchRow): Promise<void> {
    await this.#unlocked(() => this.#statements.putBatch?.run(row.id, row.owner, row.createdAtMs, row.json), true);
  }

  async batch(id: string): Promise<BatchRow | undefined> {
    return toRow(await this.#unlocked(() => this.#statements.batch?.get(id)));
  }

  async batches(): Promise<readonly BatchRow[]> {
    return ((await this.#unlocked(() => this.#statements.batches?.all())) ?? []).flatMap((row) => toRow(row) ?? []);
  }

  async deleteBatch(id: string): Promise<boolean> {
    // One transaction: tried again whole while the file is locked, never with the results gone and the batch kept.
    return this.#unlocked(
      () =>
        this.#transaction(() => {
          this.#statements.deleteResults?.run(id);
          return Number(this.#statements.deleteBatch?.run(id).changes ?? 0) > 0;
        }),
      true,
    );
  }

  async putResult(batchId: string, result: ResultRow): Promise<boolean> {
    const run = await this.#unlocked(
      () => this.#statements.putResult?.run(batchId, result.index, result.isError ? 1 : 0, result.line),
      true,
    );
    if (Number(run?.changes ?? 0) > 0) return true;
    const kept = await this.#unlocked(() => this.#statements.resultOf?.get(batchId, result.index));
    if (kept === undefined) return false;
    const keptResult = toResult(kept);
    return keptResult.isError === result.isError && keptResult.line === result.line;
  }

  async replaceBatch(row: BatchRow, expectedJson: string): Promise<boolean> {
    const run = await this.#unlocked(() => this.#statements.replaceBatch?.run(row.json, row.id, expectedJson), true);
    return Number(run?.changes ?? 0) > 0;
  }

  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.#mutex.run(work);
  }

  async takeLease(): Promise<boolean> {
    return true;
  }

  async dropLease(): Promise<void> {}

  async *resultPages(batchId: string, pageBytes: number): AsyncGenerator<readonly ResultRow[]> {
    const size = new PageSize(pageBytes);
    for (let afterIndex = -1; ; ) {
      const lines = size.lines;
      const rows = await this.#unlocked(() => this.#statements.resultPage?.all(batchId, afterIndex, lines));
      const page = (rows ?? []).map(toResult);
      size.saw(page);
      if (page.length > 0) yield page;
      const last = page.at(-1);
      if (page.length < lines || last === undefined) return;
      afterIndex = last.index;
    }
  }

  /**
   * `work` now or, while another process holds the file's lock, later (see the header); a 503 past LOCK_WAIT_MS.
   * Once a call has waited that long in vain, the next ones try once, with no wait, until a statement gets through:
   * uploads run one at a time (`exclusive`), and each waiting 5 s of its own behind the one before held its body
   * (up to `batches.max_file_bytes`) for 5 s per upload queued ahead of it, and answered the last after all of them.
   */
  async #unlocked<T>(work: () => T, isWrite = false): Promise<T> {
    try {
      const result = await whenUnlocked(work, this.#isLockedOut ? 0 : LOCK_WAIT_MS);
      // Only a write tells the lock is free: a read needs none in WAL mode, and gets through while it is held.
      if (isWrite) this.#isLockedOut = false;
      return result;
    } catch (error) {
      if (isBusyError(error)) this.#isLockedOut = true;
      throw lockedAsUnavailable(error);
    }
  }

  /** A call waited LOCK_WAIT_MS for the lock in vain, and no write got through since. */
  #isLockedOut = false;

  #transaction<T>(work: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const result = work();
      this.#db.exec("COMMIT");
      return result;
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  #isClosed = false;

  /** Idempotent: a gateway closed twice (its exit, then a test's cleanup) closes the file once. */
  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#db.close();
  }
}

function toResult(row: Record<string, unknown>): ResultRow {
  return { index: Number(row.line_index), isError: Number(row.is_error) === 1, line: String(row.line) };
}

/** The parts, in order, into a new owner-only file; resolves once it is closed. */
async function writeParts(path: string, parts: readonly Buffer[]): Promise<void> {
  const stream = createWriteStream(path, { mode: FILE_MODE });
  const failed = once(stream, "error").then(([error]) => {
    throw error;
  });
  // Kept from being unhandled while nothing awaits it (every write went well).
  failed.catch(() => {});
  for (const part of parts) {
    if (!stream.write(part)) await Promise.race([once(stream, "drain"), failed]);
  }
  stream.end();
  await Promise.race([once(stream, "finish"), failed]);
}

function toRow(row: Record<string, unknown> | undefined): FileRow | undefined {
  if (row === undefined) return undefined;
  return {
    id: String(row.id),
    owner: String(row.owner),
    createdAtMs: Number(row.created_at_ms),
    json: String(row.json),
  };
}
