// The request log of the embedded mode: append-only files next to the `state.path` SQLite file, one line per
// finished request, in two segments (`<state.path>.requests` and, before it, `<state.path>.requests.1`).
//
// Why files and not a SQLite table (the earlier backend): a request log is written ~always and read ~never. In a
// table every write also paid B-tree and index upkeep, a WAL frame per touched 16 KiB page (whole pages for a
// few hundred bytes of rows) and their checkpoints, and every row was written a second time by retention's
// DELETE. Measured in the gateway under 64 connections (wall time around the synchronous calls, one core):
// 37-41 µs per row for the inserts in batches of 64, ~8 µs for the deletes; one `write` per batch of lines
// instead saved ~18 µs of gateway CPU per JSON request in interleaved runs (bench/README.md). A file append
// writes each line's bytes once; retention drops a whole segment at a time; a query reads lines backwards from
// the newest.
//
// The line format, and how a query picks the newest lines, are in file-request-log-line.ts.
import {
  closeSync,
  existsSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  write,
} from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { isBusyError } from "../sqlite-file.ts";
import {
  cleanField,
  clientMarker,
  hasClient,
  hasName,
  headOf,
  jsonOf,
  type LineHead,
  lineOf,
  NewestByStart,
} from "./file-request-log-line.ts";
import type { RequestLogBackend, RequestLogFilter, StoredRequest } from "./request-log.ts";

/** One `write` of `bytes` at the end of the file (opened for appending); resolves to the bytes written. */
function writeAll(fd: number, bytes: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    write(fd, bytes, (error, written) => (error === null ? resolve(written) : reject(error)));
  });
}

const NEWLINE = 0x0a;
/** Bytes read at a time when scanning a segment backwards. */
const READ_CHUNK_BYTES = 256 * 1024;

export class FileRequestLogBackend implements RequestLogBackend {
  readonly kind = "embedded";
  readonly #statePath: string;
  readonly #currentPath: string;
  readonly #previousPath: string;
  #fd: number | undefined;
  /** Lines in the current segment; counted when the segment is first opened. */
  #currentLines = 0;
  /** The newest this many lines are visible (retention by count); set by `prune`, unbounded before it. */
  #keep = Number.POSITIVE_INFINITY;
  #isEarlierTableDropped = false;
  /**
   * The latest start among the lines written so far (in either segment); read from the last line when the files
   * are first opened, so that it carries over a restart. It only grows: a segment deleted by retention leaves it
   * higher than needed, which costs a query a few more lines, never a record.
   */
  #latestStartMs: number | undefined;

  /** `statePath`: the embedded SQLite file; the segments are named after it. */
  constructor(statePath: string) {
    this.#statePath = statePath;
    this.#currentPath = `${statePath}.requests`;
    this.#previousPath = `${statePath}.requests.1`;
  }

  async append(rows: readonly StoredRequest[]): Promise<void> {
    if (!this.#isEarlierTableDropped) this.#isEarlierTableDropped = dropEarlierTable(this.#statePath);
    const fd = this.#open();
    let latestStartMs = this.#latestStartMs ?? 0;
    let text = "";
    for (const row of rows) {
      latestStartMs = Math.max(latestStartMs, row.startedAtMs);
      text += lineOf(row, latestStartMs);
    }
    // Raised before the write: if the write fails part-way the mark is only higher than needed (see the field).
    this.#latestStartMs = latestStartMs;
    const bytes = Buffer.from(text, "utf8");
    try {
      // Off the event loop (libuv's thread pool): a 60 KB append took 130-800 µs of the loop's time on the bench
      // VM's ext4 when written synchronously; written this way the gateway served ~3.5 % more JSON and streamed
      // requests per second in interleaved runs (bench/README.md section 12). Appends are serialised by the
      // request log (`#flushing`), so lines never interleave.
      const written = await writeAll(fd, bytes);
      if (written !== bytes.length) throw new Error(`request log: wrote ${written} of ${bytes.length} bytes`);
    } catch (error) {
      // A full disk can take part of a batch. The next append opens the segment again, which cuts that torn end
      // (the next batch's first line is not glued to it) and counts the lines anew.
      this.#close();
      throw error;
    }
    this.#currentLines += rows.length;
  }

  /**
   * The `limit` matching lines that started last, newest start first (ties: the later line first, as in the memory
   * backend). Lines are in finish order, so a request that started early and ran long (a stream) lies after
   * requests that started later: the scan cannot stop at the `limit`-th match. It goes on until a line's
   * `latestStartMs` (no line from there back started later) is no later than the oldest start kept: then nothing
   * further back can enter. That look-behind is exactly as long as the requests that were running then (the longest
   * of them decides), and only the `limit` best lines are kept while scanning.
   */
  async query(filter: RequestLogFilter): Promise<string[]> {
    const newest = new NewestByStart(filter.limit);
    const model = filter.model === undefined ? undefined : Buffer.from(cleanField(filter.model));
    const provider = filter.provider === undefined ? undefined : Buffer.from(cleanField(filter.provider));
    const client = filter.client === undefined ? undefined : clientMarker(filter.client);
    this.#eachLineNewestFirst((line, head) => {
      const latestMs = head.latestStartMs;
      if (latestMs !== undefined) {
        if (filter.sinceMs !== undefined && latestMs < filter.sinceMs) return false;
        if (newest.isFull() && latestMs <= newest.oldestStartMs()) return false;
      }
      if (filter.sinceMs !== undefined && head.startedAtMs < filter.sinceMs) return true;
      if (filter.status !== undefined && head.status !== filter.status) return true;
      if (model !== undefined && !hasName(line, head.modelsStart, head.providersStart - 1, model)) return true;
      if (provider !== undefined && !hasName(line, head.providersStart, head.providersEnd, provider)) return true;
      if (client !== undefined && !hasClient(line, head, client)) return true;
      newest.offer(head.startedAtMs, () => jsonOf(line, head));
      return true;
    });
    return newest.texts();
  }

  async get(id: string, client?: string): Promise<string | undefined> {
    const wanted = Buffer.from(cleanField(id));
    const marker = client === undefined ? undefined : clientMarker(client);
    let json: string | undefined;
    this.#eachLineNewestFirst((line, head) => {
      if (!wanted.equals(line.subarray(head.idStart, head.modelsStart - 1))) return true;
      // Another client's request with the same id (ids are the clients' own choice) is passed over, not returned.
      if (marker !== undefined && !hasClient(line, head, marker)) return true;
      json = jsonOf(line, head);
      return false;
    });
    return json;
  }

  /**
   * By count: once the current segment holds `maxEntries` lines it becomes the previous one (the older previous
   * is deleted), so the files hold between `maxEntries` and twice as many lines and queries see the newest
   * `maxEntries`. By age: a segment last written before `oldestStartedAtMs` holds nothing younger and goes.
   */
  async prune(maxEntries: number, oldestStartedAtMs: number): Promise<void> {
    this.#keep = maxEntries;
    this.#open();
    if (this.#currentLines >= maxEntries) this.#rotate();
    if (modifiedBefore(this.#previousPath, oldestStartedAtMs)) unlinkQuietly(this.#previousPath);
    if (this.#currentLines > 0 && modifiedBefore(this.#currentPath, oldestStartedAtMs)) {
      this.#close();
      unlinkQuietly(this.#currentPath);
      this.#currentLines = 0;
    }
  }

  async close(): Promise<void> {
    this.#close();
  }

  /** The current segment, opened for appending on first use. */
  #open(): number {
    if (this.#fd !== undefined) return this.#fd;
    mkdirSync(dirname(this.#currentPath), { recursive: true });
    const fd = openSync(this.#currentPath, "a+", 0o600);
    const { lines, wholeBytes } = countLines(fd);
    // A crash during a write can leave half a line at the end: cut it, so the next line starts on its own.
    if (wholeBytes < fstatSync(fd).size) ftruncateSync(fd, wholeBytes);
    this.#fd = fd;
    this.#currentLines = lines;
    this.#latestStartMs ??= this.#lastLineLatestStartMs();
    return fd;
  }

  /**
   * The mark of the newest line on disk. A line of an earlier version has none: its own start then stands for it,
   * as every request of an earlier process started before the first one of this process.
   */
  #lastLineLatestStartMs(): number | undefined {
    let latestMs: number | undefined;
    this.#eachLineNewestFirst((_line, head) => {
      latestMs = head.latestStartMs ?? head.startedAtMs;
      return false;
    });
    return latestMs;
  }

  #close(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }

  #rotate(): void {
    this.#close();
    renameSync(this.#currentPath, this.#previousPath);
    this.#open();
  }

  /** Whole lines of the current then the previous segment, newest first, up to the kept count or a `false`. */
  #eachLineNewestFirst(visit: (line: Buffer, head: LineHead) => boolean): void {
    let left = this.#keep;
    for (const path of [this.#currentPath, this.#previousPath]) {
      const isStopped = eachLineBackwards(path, (line) => {
        if (left <= 0) return false;
        const head = headOf(line);
        if (head === undefined) return true;
        left--;
        return visit(line, head);
      });
      if (isStopped || left <= 0) return;
    }
  }
}

/**
 * Calls `visit` with each newline-terminated line of the file, last first (a torn line at the end is skipped),
 * reading it in chunks from the end. Returns whether `visit` stopped the scan. A missing file has no lines.
 */
function eachLineBackwards(path: string, visit: (line: Buffer) => boolean): boolean {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  try {
    let position = fstatSync(fd).size;
    /** The start of a line whose beginning lies in an earlier chunk (or the torn end, at first). */
    let carry = Buffer.alloc(0);
    let isTail = true;
    while (position > 0) {
      const size = Math.min(READ_CHUNK_BYTES, position);
      position -= size;
      // The chunk, then the start of the line it ends (copied once, not the chunk with it).
      const buffer = Buffer.allocUnsafe(size + carry.length);
      readSync(fd, buffer, 0, size, position);
      carry.copy(buffer, size);
      let end = buffer.length;
      for (let newline = buffer.lastIndexOf(NEWLINE, end - 1); newline !== -1; ) {
        // What follows the file's last newline is a torn line (or nothing).
        if (!isTail && newline + 1 < end && !visit(buffer.subarray(newline + 1, end))) return true;
        isTail = false;
        end = newline;
        newline = end === 0 ? -1 : buffer.lastIndexOf(NEWLINE, end - 1);
      }
      carry = buffer.subarray(0, end);
    }
    return !isTail && carry.length > 0 && !visit(carry);
  } finally {
    closeSync(fd);
  }
}

/** The whole lines of a segment, and the bytes up to the end of the last one. */
function countLines(fd: number): { lines: number; wholeBytes: number } {
  const size = fstatSync(fd).size;
  const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, Math.max(size, 1)));
  let lines = 0;
  let wholeBytes = 0;
  for (let position = 0; position < size; ) {
    const read = readSync(fd, chunk, 0, Math.min(chunk.length, size - position), position);
    if (read === 0) break;
    for (let at = chunk.indexOf(NEWLINE); at !== -1 && at < read; at = chunk.indexOf(NEWLINE, at + 1)) {
      lines++;
      wholeBytes = position + at + 1;
    }
    position += read;
  }
  return { lines, wholeBytes };
}

function modifiedBefore(path: string, epochMs: number): boolean {
  try {
    return statSync(path).mtimeMs < epochMs;
  } catch {
    return false;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}

/**
 * Versions before the files kept the log in the state file's `request_records` table: dropped once, so that an
 * upgraded file does not keep its rows (the freed pages are reused by the state tables). Done at the first append,
 * while the gateway serves: it never waits for a lock another process holds on the file (node:sqlite is
 * synchronous: SQLite's busy timeout, 2 s, held every request of the process); a locked file is tried again at the
 * next append (a table that is not there needs no lock to be found missing). Returns whether it is done.
 */
function dropEarlierTable(statePath: string): boolean {
  if (!existsSync(statePath)) return true;
  try {
    const db = new DatabaseSync(statePath);
    try {
      db.exec("PRAGMA busy_timeout = 0; DROP TABLE IF EXISTS request_records; DROP TABLE IF EXISTS request_log;");
    } finally {
      db.close();
    }
  } catch (error) {
    // Best effort: an unreadable state file only keeps the old rows.
    return !isBusyError(error);
  }
  return true;
}
