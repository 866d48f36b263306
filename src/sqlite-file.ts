// Opening the embedded SQLite file (`state.path`) the same way for each part that keeps rows in it: the state
// store and the kept Responses API answers share one file (the request log has files of its own next to it,
// observability/file-request-log.ts; it drops its earlier table from this one).
import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * The page size of a new file (SQLite fixes it when the file is created; an existing file keeps its own): SQLite's
 * default, 4 KiB. Each connection's page cache starts with 20 pages (SQLITE_DEFAULT_PCACHE_INITSZ), allocated at its
 * first read of the schema and written one page at a time; with 16 KiB pages the four connections an idle gateway
 * holds on this file (and the lock's) left ~0.9 MB more resident (bench/README.md section 41: idle RSS paired -0.94
 * MB with 4 KiB). 16 KiB pages had been chosen (2026-12-04) for the request log's insert and retention, then a table
 * in this file (~30 % less CPU per row, a third of it from checkpoints four times rarer); the request log has been
 * files of its own since (observability/file-request-log.ts), and the state store's and kept answers' writes read
 * the same CPU per request with either size (section 41).
 */
const PAGE_SIZE_BYTES = 4_096;

/**
 * The file holds prompts and answers (kept Responses API answers) and the request log sits next to it: only the
 * gateway's user may read them. SQLite creates a file with the process's umask (0644 by default: every local user
 * could read it) and gives its `-wal` and `-shm` files the main file's mode, so the main file is created here first,
 * owner-only. A file that exists keeps the mode its owner chose.
 */
const NEW_FILE_MODE = 0o600;
const NEW_FOLDER_MODE = 0o700;

/**
 * ms a statement waits for another connection's write lock on the file before SQLITE_BUSY: only where waiting is
 * allowed (opening at the start, the last writes of an exit). node:sqlite is synchronous, so this wait holds the
 * event loop: the parts that write while the gateway serves set their connection's busy timeout to 0 and come back
 * later instead (`whenUnlocked`, or a timer of their own).
 */
export const BUSY_TIMEOUT_MS = 2_000;

export function openSqliteFile(path: string): DatabaseSync {
  if (path !== ":memory:") {
    makeFolders(dirname(path));
    // "a": created when missing, never truncated; a no-op (but for the open) on an existing file.
    closeSync(openSync(path, "a", NEW_FILE_MODE));
  }
  const db = new DatabaseSync(path);
  // Before WAL mode: a new file's header, written by the switch to WAL, takes the page size set at that moment.
  // The parts sharing the file (and `llm-gateway route`, which reads the books from it) wait for each other's short
  // transactions.
  db.exec(`PRAGMA page_size = ${PAGE_SIZE_BYTES}; PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS};`);
  // WAL: a write never blocks a concurrent reader; NORMAL: no fsync per commit, only at checkpoints.
  if (path !== ":memory:") db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
  return db;
}

/**
 * `mkdir -p` that fails instead of spinning: Node's `mkdirSync(dir, { recursive: true })` loops forever, at full
 * CPU, on a folder its parent refuses with ENOENT (`/proc/nope`), so `state.path: /proc/nope/state.db` hung the
 * start with no word. Each missing level is made on its own, from the first one that exists; an error is thrown
 * (and reported as a state.path problem by the caller).
 */
function makeFolders(dir: string): void {
  const missing: string[] = [];
  for (let current = dir; !existsSync(current); current = dirname(current)) {
    missing.push(current);
    if (dirname(current) === current) break;
  }
  for (const folder of missing.reverse()) {
    try {
      mkdirSync(folder, NEW_FOLDER_MODE);
    } catch (error) {
      // Made meanwhile by another process sharing the folder: that is what was wanted.
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
}

/** SQLite's primary result code for a lock another connection holds (past the busy timeout). */
const SQLITE_BUSY = 5;

/** node:sqlite's error for a lock another connection holds (`database is locked`). */
export function isBusyError(error: unknown): boolean {
  const { errcode } = (typeof error === "object" && error !== null ? error : {}) as { errcode?: unknown };
  return typeof errcode === "number" && (errcode & 0xff) === SQLITE_BUSY;
}

/** ms before the first retry of a statement refused the lock (most writes of another process are short), doubled up to the cap. */
const LOCK_RETRY_FIRST_MS = 5;
const LOCK_RETRY_MAX_MS = 200;

/**
 * Runs `work` (synchronous statements on a connection whose busy timeout is 0) now and, while another connection
 * holds the lock it needs, again by a timer (5, 10, 20 ... 200 ms apart) until `maxWaitMs` have passed; then the busy
 * error is thrown. SQLite's own busy timeout would do the same waiting inside the synchronous call, holding the event
 * loop (every request of the process) for all of it. `work` must leave nothing half done when it throws (one
 * statement, or one transaction rolled back): it runs again from the start.
 */
export async function whenUnlocked<T>(work: () => T, maxWaitMs: number): Promise<T> {
  const startedMs = performance.now();
  for (let delayMs = LOCK_RETRY_FIRST_MS; ; delayMs = Math.min(delayMs * 2, LOCK_RETRY_MAX_MS)) {
    try {
      return work();
    } catch (error) {
      const leftMs = maxWaitMs - (performance.now() - startedMs);
      if (!isBusyError(error) || leftMs <= 0) throw error;
      await sleep(Math.min(delayMs, leftMs));
    }
  }
}

/** SQLite's primary result codes for a file that is not (or no longer) a readable database. */
const SQLITE_CORRUPT = 11;
const SQLITE_NOTADB = 26;

/** node:sqlite's error for a damaged file (`database disk image is malformed`, `file is not a database`). */
export function isDamagedFileError(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { code, errcode } = error as { code?: unknown; errcode?: unknown };
  if (code !== "ERR_SQLITE_ERROR" || typeof errcode !== "number") return false;
  // Extended result codes (SQLITE_CORRUPT_INDEX, ...) carry the primary one in their low byte.
  const primary = errcode & 0xff;
  return primary === SQLITE_CORRUPT || primary === SQLITE_NOTADB;
}
