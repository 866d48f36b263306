// Kept Responses API answers (`store`, `previous_response_id`, `item_reference`) in the embedded SQLite file
// (node:sqlite), in tables of their own next to the state tables, so a conversation survives a gateway restart.
// Rows are opaque JSON: the row and limit shapes match protocols' KeptResponseRows (state/ does not import
// protocols). Bounded by count, total bytes and age; the oldest rows go first. Writes are small and synchronous
// (one transaction per kept answer), like the state store's flush. Over a bound, the owner (client) holding the most
// loses its oldest row first (kept-rows-eviction.ts): one client's flood evicts its own rows, not another client's.
//
// node:sqlite is synchronous: a write that waited for a write lock another process holds on the file (SQLite's
// busy timeout, 2 s) stalled every request of the gateway for that long. A put therefore never waits: when the
// file is locked the answer waits in memory (readable at once by this process, so a continuation still finds it)
// and is written by a timer as soon as the lock is free, in put order, with the time it was kept.
//
// A streamed background response's events are rows of their own (`<table>_events`: response id, sequence number),
// appended: each heartbeat writes only the events since the last one (rewriting the row with every event in it each
// second wrote O(n^2) bytes over a long run), and a follower in another process reads only those after the last one
// it has. A row written by an earlier version (its events inside its JSON) is read and written as it is.
//
// Kept whole (over 400 lines): every write path (put, delete, a background run's compare-and-set and appends) shares
// one connection's prepared statements, the busy-timeout switching and the queue of rows waiting for the write lock
// (a background write first writes a row of its own still waiting); split, each part would need all of them passed.
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { Clock } from "../clock.ts";
import type { Logger } from "../logger.ts";
import { BUSY_TIMEOUT_MS, isBusyError, openSqliteFile, whenUnlocked } from "../sqlite-file.ts";
import { evictByOwner } from "./kept-rows-eviction.ts";
import { throwLockedAsUnavailable } from "./state-file-locked.ts";

/**
 * SQLite's busy timeout outside the exit's last writes: none. Any wait inside a synchronous call holds the event
 * loop (100 ms per read until 2026-12-06). A read needs no lock in WAL mode but for rare moments (another
 * connection recovering the WAL after a crash, or holding the file in exclusive locking mode): it is tried again by
 * a timer instead, for READ_WAIT_MS at most, then fails (the caller answers 503).
 */
const READ_BUSY_TIMEOUT_MS = 0;
const READ_WAIT_MS = 1_000;
/**
 * ms a delete tries, at most, to get the write lock another process holds; each attempt waits for nothing, and the
 * event loop serves in between (`whenUnlocked`).
 */
const DELETE_WAIT_MS = 100;
/** ms between attempts to write the answers waiting for the file's write lock. */
const RETRY_INTERVAL_MS = 250;
/**
 * Answers waiting for the lock beyond this many, or beyond this many bytes (their JSON, UTF-8): the oldest waiting
 * ones are not kept until both bounds hold (memory stays bounded). The count alone let a few huge answers (up to
 * `responses.store.max_bytes` each, 64 MiB by default) hold gigabytes while the file was locked; 32 MiB is ~1,000
 * answers of a typical 30 KiB, and a lock held longer than a backup's seconds is what the drop is for.
 */
const MAX_WAITING_ROWS = 1_000;
const MAX_WAITING_BYTES = 32 * 1024 * 1024;
/**
 * ms a background response's write (compare and set, event append) tries, at most, to get the write lock another
 * process holds, attempts BACKGROUND_WRITE_RETRY_MS apart (timers: the event loop serves in between). It cannot wait
 * in memory as a put does: it must know whether it landed. Past it the write fails (the run's next heartbeat writes
 * again; its events are still to send).
 */
const BACKGROUND_WRITE_WAIT_MS = 2_000;
const BACKGROUND_WRITE_RETRY_MS = 10;

export interface KeptResponseRow {
  readonly id: string;
  readonly json: string;
  readonly itemIds: readonly string[];
  readonly owner?: string; // the named client that wrote it (absent: an unnamed key)
  readonly touchIds?: readonly string[]; // rows it reads its history from: stamped as written with it
  /**
   * What is kept instead when a row of its touchIds is gone as it is written (in the same transaction): built only
   * then, or when the row waits for the lock (a row written later by the timer has no caller to tell).
   */
  readonly whole?: () => WholeRow;
}

/** A row's whole form (KeptResponseRow.whole): its JSON and item ids. */
export interface WholeRow {
  readonly json: string;
  readonly itemIds: readonly string[];
}

/** A row a put accepted that was not kept after all (it waited for the lock past the memory bounds): who is told. */
export interface LostRow {
  readonly id: string;
  readonly owner?: string;
  /** Its item ids (KeptResponseRow.itemIds): an `item_reference` naming one is told it was not stored. */
  readonly itemIds: readonly string[];
}

export interface KeptResponseLimits {
  /** Most responses kept (count). */
  readonly maxEntries: number;
  /** Most bytes kept, counted as the UTF-8 size of each row's JSON. */
  readonly maxBytes: number;
  /** How long a response is kept after it was stored, in milliseconds. */
  readonly maxAgeMs: number;
}

/**
 * Which rows a store keeps: its tables and how its log lines name it. Kept responses and conversations (OpenAI's
 * Conversations API) are stored alike, in tables of their own, each with the same bounds: a GET of a response id
 * must never find a conversation, and a flood of kept responses must not evict a conversation's rows by count.
 */
export interface KeptRowsKind {
  readonly table: string;
  readonly itemTable: string;
  /** A streamed background response's events, appended (response id, sequence number). */
  readonly eventTable: string;
  /** How log lines name the store (`kept responses`) and its rows (`kept answers`). */
  readonly label: string;
  readonly rows: string;
}

export const KEPT_RESPONSES: KeptRowsKind = {
  table: "kept_responses",
  itemTable: "kept_response_items",
  eventTable: "kept_response_events",
  label: "kept responses",
  rows: "kept answers",
};
export const KEPT_CONVERSATIONS: KeptRowsKind = {
  table: "kept_conversations",
  itemTable: "kept_conversation_items",
  eventTable: "kept_conversation_events",
  label: "conversations",
  rows: "conversations",
};

/** A table of an earlier version gets the owner column (its rows count as an unnamed key's, ''), then its index. */
function addOwnerColumn(db: DatabaseSync, table: string): void {
  const columns = db.prepare(`PRAGMA table_info(${table})`).all();
  if (!columns.some((column) => column.name === "owner")) {
    db.exec(`ALTER TABLE ${table} ADD COLUMN owner TEXT NOT NULL DEFAULT ''`);
  }
  db.exec(`CREATE INDEX IF NOT EXISTS ${table}_owner ON ${table} (owner, seq)`);
}

function schemaOf({ table, itemTable, eventTable }: KeptRowsKind): string {
  return `
  CREATE TABLE IF NOT EXISTS ${table} (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    stored_at_ms INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    json TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT ''
  );
  CREATE INDEX IF NOT EXISTS ${table}_stored ON ${table} (stored_at_ms);
  CREATE TABLE IF NOT EXISTS ${itemTable} (item_id TEXT PRIMARY KEY, response_id TEXT NOT NULL);
  CREATE INDEX IF NOT EXISTS ${itemTable}_response ON ${itemTable} (response_id);
  CREATE TABLE IF NOT EXISTS ${eventTable} (response_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL);
  CREATE UNIQUE INDEX IF NOT EXISTS ${eventTable}_response ON ${eventTable} (response_id, seq);
`;
}

/** What a background response's compare and set also does, in the same transaction. */
export interface ConditionalWrite {
  /** Events to append first (see `appendEvents`): the row is written only if they are. */
  readonly events?: { readonly keptCount: number; readonly events: readonly string[] };
  /** Refused (nothing written) when the store's clock is past this (ms): a run's write that came too late. */
  readonly notAfterMs?: number;
}

/** How a background response's write ends: written; refused (rolled back); or its row deleted (over the bounds). */
type TransactionOutcome = "written" | "refused" | "deleted";

/** An answer waiting for the file's write lock: the time it was kept travels with it. */
interface WaitingRow {
  readonly row: KeptResponseRow;
  readonly storedAtMs: number;
  readonly bytes: number;
  /**
   * Its whole form, built when it began to wait (its bytes counted in the waiting bound); let go first past that
   * bound (#wait), then the row is written pointing, as every waiting row was before 2026-12-07.
   */
  whole?: SizedWholeRow | undefined;
}

interface SizedWholeRow extends WholeRow {
  readonly bytes: number;
}

/** The memory a waiting answer holds: its JSON and its whole form's. */
function waitingBytesOf(entry: WaitingRow): number {
  return entry.bytes + (entry.whole?.bytes ?? 0);
}

function sized(whole: (() => WholeRow) | undefined): SizedWholeRow | undefined {
  const built = whole?.();
  return built === undefined ? undefined : { ...built, bytes: Buffer.byteLength(built.json) };
}

export class EmbeddedKeptResponses {
  readonly kind = "embedded";
  readonly #path: string;
  readonly #db: DatabaseSync;
  readonly #limits: KeptResponseLimits;
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  readonly #insert: StatementSync;
  readonly #insertItem: StatementSync;
  readonly #select: StatementSync;
  readonly #selectByItem: StatementSync;
  readonly #selectIdByItem: StatementSync;
  readonly #delete: StatementSync;
  readonly #deleteItems: StatementSync;
  readonly #expire: StatementSync;
  readonly #expireItems: StatementSync;
  readonly #totals: StatementSync;
  readonly #holders: StatementSync;
  readonly #oldestOf: StatementSync;
  readonly #selectRow: StatementSync;
  readonly #insertEvent: StatementSync;
  readonly #eventCount: StatementSync;
  readonly #selectEvents: StatementSync;
  readonly #deleteEvents: StatementSync;
  readonly #expireEvents: StatementSync;
  readonly #addBytes: StatementSync;
  readonly #restamp: StatementSync;
  /** Answers the file's write lock kept out, oldest first (a Map keeps insertion order; a put again moves one last). */
  readonly #waiting = new Map<string, WaitingRow>();
  /** The bytes of the answers in #waiting. */
  #waitingBytes = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  /** The last failure of a waiting write that was not a busy lock, told once until the rows are written. */
  #failure: string | undefined;
  #droppedWhileWaiting = 0;
  /** Told of the rows dropped while waiting: their puts had returned, so their requests believe them kept. */
  #onLost: ((rows: readonly LostRow[]) => void) | undefined;

  readonly #label: string;
  /** How log lines name the rows (`kept answers`, `conversations`). */
  readonly #rows: string;

  constructor(path: string, limits: KeptResponseLimits, clock: Clock, logger?: Logger, kind = KEPT_RESPONSES) {
    this.#path = path;
    this.#label = kind.label;
    this.#rows = kind.rows;
    this.#db = openSqliteFile(path);
    this.#limits = limits;
    this.#clock = clock;
    this.#logger = logger;
    try {
      this.#db.exec(schemaOf(kind));
      addOwnerColumn(this.#db, kind.table);
      // Events whose row is gone: a gateway of the previous version deleted or evicted the row (it knows no events).
      this.#db.exec(`DELETE FROM ${kind.eventTable} WHERE response_id NOT IN (SELECT id FROM ${kind.table})`);
      this.#db.exec(`PRAGMA busy_timeout = ${READ_BUSY_TIMEOUT_MS}`);
    } catch (error) {
      this.#db.close(); // a damaged file is set aside by the caller: no handle may stay open on it
      throw error;
    }
    const { table, itemTable, eventTable } = kind;
    this.#insert = this.#db.prepare(
      `INSERT INTO ${table} (id, stored_at_ms, bytes, json, owner) VALUES (?, ?, ?, ?, ?)`,
    );
    this.#insertItem = this.#db.prepare(`INSERT OR REPLACE INTO ${itemTable} (item_id, response_id) VALUES (?, ?)`);
    this.#select = this.#db.prepare(`SELECT json FROM ${table} WHERE id = ? AND stored_at_ms > ?`);
    this.#selectByItem = this.#db.prepare(
      `SELECT r.json FROM ${itemTable} i JOIN ${table} r ON r.id = i.response_id WHERE i.item_id = ? AND r.stored_at_ms > ?`,
    );
    this.#selectIdByItem = this.#db.prepare(
      `SELECT i.response_id FROM ${itemTable} i JOIN ${table} r ON r.id = i.response_id WHERE i.item_id = ? AND r.stored_at_ms > ?`,
    );
    this.#delete = this.#db.prepare(`DELETE FROM ${table} WHERE id = ?`);
    this.#deleteItems = this.#db.prepare(`DELETE FROM ${itemTable} WHERE response_id = ?`);
    this.#expire = this.#db.prepare(`DELETE FROM ${table} WHERE stored_at_ms <= ?`);
    this.#expireItems = this.#db.prepare(
      `DELETE FROM ${itemTable} WHERE response_id IN (SELECT id FROM ${table} WHERE stored_at_ms <= ?)`,
    );
    this.#totals = this.#db.prepare(`SELECT COUNT(*) AS count, COALESCE(SUM(bytes), 0) AS bytes FROM ${table}`);
    this.#holders = this.#db.prepare(
      `SELECT owner, COUNT(*) AS count, COALESCE(SUM(bytes), 0) AS bytes, MIN(seq) AS oldest FROM ${table} GROUP BY owner`,
    );
    this.#oldestOf = this.#db.prepare(`SELECT id, bytes, seq FROM ${table} WHERE owner = ? ORDER BY seq LIMIT 2`);
    this.#selectRow = this.#db.prepare(`SELECT json, bytes FROM ${table} WHERE id = ?`);
    this.#insertEvent = this.#db.prepare(`INSERT INTO ${eventTable} (response_id, seq, event) VALUES (?, ?, ?)`);
    this.#eventCount = this.#db.prepare(`SELECT COUNT(*) AS count FROM ${eventTable} WHERE response_id = ?`);
    this.#selectEvents = this.#db.prepare(
      `SELECT event FROM ${eventTable} WHERE response_id = ? AND seq >= ? ORDER BY seq`,
    );
    this.#deleteEvents = this.#db.prepare(`DELETE FROM ${eventTable} WHERE response_id = ?`);
    this.#expireEvents = this.#db.prepare(
      `DELETE FROM ${eventTable} WHERE response_id IN (SELECT id FROM ${table} WHERE stored_at_ms <= ?)`,
    );
    this.#addBytes = this.#db.prepare(`UPDATE ${table} SET bytes = bytes + ? WHERE id = ?`);
    // The larger of the two stamps: a writer whose time is older (a row that waited for the lock, another process's
    // clock behind) must not make a row newer writers read expire before them. Its place in its owner's order
    // still moves next to the row being written (evicted together).
    this.#restamp = this.#db.prepare(
      `UPDATE ${table} SET stored_at_ms = MAX(stored_at_ms, ?), seq = (SELECT MAX(seq) FROM ${table}) + 1 WHERE id = ? AND stored_at_ms > ?`,
    );
  }

  /**
   * Keeps a row (replacing one with the same id), then evicts expired and oldest rows past the bounds. Never waits
   * for another process's write lock: the row waits in memory instead (see the file's header). Other failures (a
   * full or read-only disk) throw, as before. false: a row of its touchIds was gone (undefined: not known yet, waiting).
   */
  async put(row: KeptResponseRow): Promise<boolean | undefined> {
    const entry: WaitingRow = { row, storedAtMs: this.#clock.now(), bytes: Buffer.byteLength(row.json) };
    // Behind answers already waiting: written after them, and the lock is not tried again for each answer.
    if (this.#waiting.size > 0) {
      this.#wait(entry);
      return undefined;
    }
    try {
      return this.#write([entry], 0);
    } catch (error) {
      if (!isBusyError(error)) throw error;
      this.#wait(entry);
      this.#logger?.warn(
        { path: this.#path },
        `${this.#label}: ${this.#path} is locked by another process; answers are kept in memory meanwhile (a continuation still finds them) and written when it is free`,
      );
      return undefined;
    }
  }

  async get(id: string): Promise<string | undefined> {
    const waiting = this.#waiting.get(id);
    if (waiting !== undefined) return this.#isUsable(waiting) ? waiting.row.json : undefined;
    const read = () => this.#select.get(id, this.#oldestKeptMs());
    const row = await whenUnlocked(read, READ_WAIT_MS).catch(throwLockedAsUnavailable);
    return row === undefined ? undefined : String(row.json);
  }

  async getByItem(itemId: string): Promise<string | undefined> {
    const waiting = [...this.#waiting.values()].findLast((entry) => entry.row.itemIds.includes(itemId));
    if (waiting !== undefined && this.#isUsable(waiting)) return waiting.row.json;
    const read = () => this.#selectByItem.get(itemId, this.#oldestKeptMs());
    const row = await whenUnlocked(read, READ_WAIT_MS).catch(throwLockedAsUnavailable);
    return row === undefined ? undefined : String(row.json);
  }

  /** The ids of the rows getByItem would read for these item ids, in order (undefined: none). */
  async getIdsByItems(itemIds: readonly string[]): Promise<(string | undefined)[]> {
    const waiting = new Map<string, WaitingRow>();
    for (const entry of this.#waiting.values()) for (const itemId of entry.row.itemIds) waiting.set(itemId, entry);
    const read = () =>
      itemIds.map((itemId) => {
        const entry = waiting.get(itemId);
        if (entry !== undefined && this.#isUsable(entry)) return entry.row.id;
        const row = this.#selectIdByItem.get(itemId, this.#oldestKeptMs());
        return row === undefined ? undefined : String(row.response_id);
      });
    return whenUnlocked(read, READ_WAIT_MS).catch(throwLockedAsUnavailable);
  }

  /**
   * Writes `row` only if the kept row is still `expectedJson` (and, with `notAfterMs`, the clock is not past it),
   * keeping its appended events (and their bytes); with `events`, appends them first, in the same transaction. False
   * when the row changed or is gone, the write came too late, or the events cannot be appended (see `appendEvents`).
   * A row over the bounds is not kept: the unchanged row is deleted and the answer is false (as Redis).
   */
  async putIfUnchanged(row: KeptResponseRow, expectedJson: string, options: ConditionalWrite = {}): Promise<boolean> {
    return this.#transactionUnblocking(row.id, () => {
      const current = this.#selectRow.get(row.id);
      if (current === undefined || String(current.json) !== expectedJson) return "refused";
      if (options.notAfterMs !== undefined && this.#clock.now() > options.notAfterMs) return "refused";
      const { events } = options;
      if (events !== undefined && !this.#appendEventsNow(row.id, events.keptCount, events.events)) return "refused";
      const bytes = Buffer.byteLength(row.json);
      if (bytes > this.#limits.maxBytes || this.#limits.maxEntries <= 0) {
        this.#deleteRow(row.id);
        return "deleted";
      }
      // Read again: the append above counted its events in the row.
      const before = this.#selectRow.get(row.id);
      const eventBytes = Number(before?.bytes ?? 0) - Buffer.byteLength(String(before?.json ?? ""));
      // Replaced as `put` replaces (a new place in its owner's eviction order, as Redis renews it), its events kept.
      this.#delete.run(row.id);
      this.#deleteItems.run(row.id);
      this.#insert.run(row.id, this.#clock.now(), bytes + Math.max(0, eventBytes), row.json, row.owner ?? "");
      for (const itemId of row.itemIds) this.#insertItem.run(itemId, row.id);
      this.#evict();
      return "written";
    });
  }

  /**
   * Appends a background response's events, counted in its row's bytes. `keptCount`: how many the caller knows kept;
   * the table may hold up to `events.length` more (an append that landed but whose answer was lost): only the rest is
   * appended. False (nothing appended) when the row is gone, or the events kept cannot have come from these.
   */
  async appendEvents(id: string, keptCount: number, events: readonly string[], notAfterMs?: number): Promise<boolean> {
    if (events.length === 0) return true;
    return this.#transactionUnblocking(id, () => {
      if (notAfterMs !== undefined && this.#clock.now() > notAfterMs) return "refused";
      if (!this.#appendEventsNow(id, keptCount, events)) return "refused";
      this.#evict();
      return "written";
    });
  }

  /**
   * A row's appended events from index `from` on (none: an empty list). Waits for a lock as `get` does: a
   * conversation's log is read on every turn, and a read refused at once was a 503 where a moment's wait served.
   */
  async getEvents(id: string, from: number): Promise<string[]> {
    if (!Number.isFinite(from)) return [];
    const read = () => this.#selectEvents.all(id, Math.max(0, Math.floor(from)));
    const rows = await whenUnlocked(read, READ_WAIT_MS).catch(throwLockedAsUnavailable);
    return rows.map((event) => String(event.event));
  }

  #appendEventsNow(id: string, keptCount: number, events: readonly string[]): boolean {
    if (this.#selectRow.get(id) === undefined) return false;
    const count = Number(this.#eventCount.get(id)?.count ?? 0);
    const landed = count - keptCount;
    if (landed < 0 || landed > events.length) return false;
    let bytes = 0;
    for (let index = landed; index < events.length; index++) {
      const event = events[index] ?? "";
      this.#insertEvent.run(id, keptCount + index, event);
      bytes += Buffer.byteLength(event);
    }
    this.#addBytes.run(bytes, id);
    return true;
  }

  /**
   * One write transaction of a background response that waits for no lock (as `#deleteUnblocking`), up to
   * BACKGROUND_WRITE_WAIT_MS; then the busy error is thrown. A row of this id still waiting in memory for the lock
   * (its first write) is written first: the compare and the append need it in the file.
   */
  async #transactionUnblocking(id: string, write: () => TransactionOutcome): Promise<boolean> {
    const startedMs = performance.now();
    for (;;) {
      if (this.#waiting.has(id)) this.#retry();
      if (!this.#waiting.has(id)) {
        try {
          return this.#transactionNow(write);
        } catch (error) {
          if (!isBusyError(error) || performance.now() - startedMs >= BACKGROUND_WRITE_WAIT_MS) throw error;
        }
      } else if (performance.now() - startedMs >= BACKGROUND_WRITE_WAIT_MS) {
        throw new Error(`${this.#path} is locked by another process (database is locked)`);
      }
      await new Promise((resolve) => setTimeout(resolve, BACKGROUND_WRITE_RETRY_MS));
    }
  }

  /** `write` in one transaction taken without waiting; rolled back when it refuses or throws. True: written. */
  #transactionNow(write: () => TransactionOutcome): boolean {
    this.#db.exec("PRAGMA busy_timeout = 0");
    try {
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        const outcome = write();
        this.#db.exec(outcome === "refused" ? "ROLLBACK" : "COMMIT");
        return outcome === "written";
      } catch (error) {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
        throw error;
      }
    } finally {
      this.#db.exec(`PRAGMA busy_timeout = ${READ_BUSY_TIMEOUT_MS}`);
    }
  }

  /**
   * A file locked by another process for longer than DELETE_WAIT_MS fails the delete: the client is told to try
   * again, nothing changed. Meanwhile the gateway serves (`#deleteUnblocking`).
   */
  async delete(id: string): Promise<boolean> {
    const isKept = (await this.get(id)) !== undefined;
    await this.#deleteUnblocking(id);
    const waiting = this.#waiting.get(id);
    if (waiting !== undefined) this.#forget(waiting);
    return isKept;
  }

  /**
   * The row and its items in one transaction that waits for no lock: tried at once, then by a timer (other requests
   * are served between the attempts) until DELETE_WAIT_MS have passed; then a 503 saying the file is locked.
   */
  async #deleteUnblocking(id: string): Promise<void> {
    await whenUnlocked(() => this.#deleteNow(id), DELETE_WAIT_MS).catch(throwLockedAsUnavailable);
  }

  #deleteNow(id: string): void {
    this.#db.exec("PRAGMA busy_timeout = 0");
    try {
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        this.#deleteRow(id);
        this.#db.exec("COMMIT");
      } catch (error) {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
        throw error;
      }
    } finally {
      this.#db.exec(`PRAGMA busy_timeout = ${READ_BUSY_TIMEOUT_MS}`);
    }
  }

  /** How many rows and bytes are kept in the file (expired rows not yet evicted included). */
  totals(): { count: number; bytes: number } {
    const row = this.#totals.get();
    return { count: Number(row?.count ?? 0), bytes: Number(row?.bytes ?? 0) };
  }

  /**
   * `listener` is told of every row dropped from the memory bounds while waiting for the lock (its put had already
   * returned): the caller marks them not kept, as it marks a put that failed.
   */
  onLost(listener: (rows: readonly LostRow[]) => void): void {
    this.#onLost = listener;
  }

  /** Answers waiting for the file's write lock. */
  waitingCount(): number {
    return this.#waiting.size;
  }

  /**
   * The last write before an exit that will not wait for `close` (a second signal): the answers waiting for the
   * lock, if it is free now (no wait), else they are lost, said in one line. The file is left open.
   */
  writeBeforeExit(): void {
    clearInterval(this.#retryTimer);
    if (this.#db.isOpen) this.#writeAllWaiting();
  }

  /**
   * The answers still waiting get up to `maxWaitMs` for the lock, by a timer (`whenUnlocked`), not inside SQLite: the
   * state file's and the other store's last writes wait for the same lock meanwhile, under the same bound (each
   * waited 2 s in turn, holding the event loop, until 2026-12-06). What is not written is said, not thrown. Closing
   * twice returns the first close.
   */
  close(maxWaitMs = BUSY_TIMEOUT_MS): Promise<void> {
    this.#closing ??= this.#close(maxWaitMs);
    return this.#closing;
  }

  #closing: Promise<void> | undefined;

  /** Written and closed before this returns when the lock is free (the usual case); else by a timer, bounded. */
  #close(maxWaitMs: number): Promise<void> {
    if (!this.#db.isOpen) return Promise.resolve();
    clearInterval(this.#retryTimer);
    const entries = [...this.#waiting.values()];
    const lastWrite = (): void => {
      if (entries.length > 0) this.#write(entries, 0);
      for (const entry of entries) this.#forget(entry);
    };
    const closeFile = (): void => {
      if (this.#db.isOpen) this.#db.close();
    };
    try {
      lastWrite();
    } catch (error) {
      if (!isBusyError(error) || maxWaitMs <= 0) {
        this.#lostAtExit(error, entries.length, 0);
        closeFile();
        return Promise.resolve();
      }
      return whenUnlocked(lastWrite, maxWaitMs).then(closeFile, (late: unknown) => {
        this.#lostAtExit(late, entries.length, maxWaitMs);
        closeFile();
      });
    }
    closeFile();
    return Promise.resolve();
  }

  #lostAtExit(error: unknown, count: number, waitedMs: number): void {
    const message = error instanceof Error ? error.message : String(error);
    const waited = isBusyError(error) ? `, after ${waitedMs} ms waiting for the lock another process holds` : "";
    this.#logger?.warn(
      { path: this.#path, error: message, store: this.#label, lost: count },
      `${this.#label}: the last write before the exit was not saved (${message}${waited}): ${count} ${this.#rows} waiting for ${this.#path} are lost (a later request naming them will not find them)`,
    );
  }

  /**
   * At a second signal: every waiting answer in one write, if the lock is free now (no wait); a failure is said, not
   * thrown.
   */
  #writeAllWaiting(): void {
    if (this.#waiting.size === 0) return;
    try {
      this.#write([...this.#waiting.values()], 0);
      this.#waiting.clear();
      this.#waitingBytes = 0;
    } catch (error) {
      this.#logger?.warn(
        { path: this.#path, error: error instanceof Error ? error.message : String(error), store: this.#label },
        `${this.#label}: ${this.#waiting.size} ${this.#rows} waiting for ${this.#path} were not written before the exit`,
      );
    }
  }

  /**
   * Writes rows in one transaction, waiting at most `busyTimeoutMs` for the write lock; throws when it fails. A row
   * one of whose touchIds is gone (expired, evicted, deleted) is written whole (KeptResponseRow.whole), checked here,
   * under the lock: a row that waited for it learns of a link that went meanwhile. false: one without a whole form
   * was written pointing to a gone row.
   */
  #write(entries: readonly WaitingRow[], busyTimeoutMs: number): boolean {
    let isLinked = true;
    this.#db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
    try {
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        for (const entry of entries) {
          const { row, storedAtMs } = entry;
          // The rows its history is read from are kept as if written with it (a new place in their owner's order):
          // every one, also past one that is gone.
          let isRowLinked = true;
          for (const id of row.touchIds ?? []) {
            const isTouched = Number(this.#restamp.run(storedAtMs, id, this.#oldestKeptMs()).changes) > 0;
            isRowLinked &&= isTouched;
          }
          const whole = isRowLinked ? undefined : (entry.whole ?? sized(row.whole));
          if (!isRowLinked && whole === undefined) isLinked = false;
          const { json, itemIds, bytes } = whole ?? { ...row, bytes: entry.bytes };
          this.#deleteRow(row.id);
          if (bytes <= this.#limits.maxBytes && this.#limits.maxEntries > 0) {
            this.#insert.run(row.id, storedAtMs, bytes, json, row.owner ?? "");
            for (const itemId of itemIds) this.#insertItem.run(itemId, row.id);
          }
        }
        this.#evict();
        this.#db.exec("COMMIT");
        return isLinked;
      } catch (error) {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
        throw error;
      }
    } finally {
      this.#db.exec(`PRAGMA busy_timeout = ${READ_BUSY_TIMEOUT_MS}`);
    }
  }

  #wait(pointing: WaitingRow): void {
    // Its whole form built now and counted; the row keeps no way to build it again: that held what it is built from
    // (a whole conversation's objects, in the caller's closure) past the waiting bytes' count.
    const { whole: build, ...row } = pointing.row;
    const whole = sized(build);
    const entry: WaitingRow = { ...pointing, row, ...(whole === undefined ? {} : { whole }) };
    const earlier = this.#waiting.get(entry.row.id);
    if (earlier !== undefined) this.#forget(earlier);
    this.#waiting.set(entry.row.id, entry);
    this.#waitingBytes += waitingBytesOf(entry);
    // Past the byte bound the whole forms go first, oldest first: one is only kept in case a link goes while its row
    // waits, and must not push out answers that fit (a continuation of a long conversation: its own turn small, its
    // whole form the conversation's size, over the bound on its own dropped every answer waiting, then itself).
    for (const waiting of this.#waiting.values()) {
      if (this.#waitingBytes <= MAX_WAITING_BYTES) break;
      this.#waitingBytes -= waiting.whole?.bytes ?? 0;
      waiting.whole = undefined;
    }
    // Oldest first; an answer over the byte bound on its own goes too (it is the last one left then).
    const lost: LostRow[] = [];
    while (this.#waiting.size > MAX_WAITING_ROWS || this.#waitingBytes > MAX_WAITING_BYTES) {
      const oldest = this.#waiting.values().next().value;
      if (oldest === undefined) break;
      this.#forget(oldest);
      const { id, owner, itemIds } = oldest.row;
      lost.push(owner === undefined ? { id, itemIds } : { id, owner, itemIds });
      this.#droppedWhileWaiting++;
    }
    if (lost.length > 0) this.#lose(lost);
    if (this.#retryTimer === undefined) {
      this.#retryTimer = setInterval(() => this.#retry(), RETRY_INTERVAL_MS);
      this.#retryTimer.unref();
    }
  }

  /** The timer's attempt: every waiting answer in one transaction, without waiting for the lock. */
  #retry(): void {
    const entries = [...this.#waiting.values()];
    try {
      this.#write(entries, 0);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (!isBusyError(error) && this.#failure !== message) {
        this.#failure = message;
        this.#logger?.warn(
          { path: this.#path, error: message },
          `${this.#label}: ${entries.length} answers waiting for ${this.#path} could not be written (${message}); tried again every ${RETRY_INTERVAL_MS} ms`,
        );
      }
      return;
    }
    for (const entry of entries) {
      this.#forget(entry);
    }
    const dropped = this.#droppedWhileWaiting;
    this.#logger?.info(
      { path: this.#path, written: entries.length, dropped },
      dropped === 0
        ? `${this.#label}: ${entries.length} answers that waited for the lock are written to ${this.#path}`
        : `${this.#label}: ${entries.length} answers that waited for the lock are written to ${this.#path}; ${dropped} more did not fit in memory meanwhile (over ${MAX_WAITING_ROWS} waiting, or ${MAX_WAITING_BYTES / 1024 / 1024} MiB) and were not kept`,
    );
    this.#failure = undefined;
    this.#droppedWhileWaiting = 0;
    if (this.#waiting.size === 0) {
      clearInterval(this.#retryTimer);
      this.#retryTimer = undefined;
    }
  }

  /**
   * Rows dropped while waiting: the first drop of a wait is said at once (the line that reports the written rows
   * counts them all), and each is told to the listener, so a later GET or continuation naming it hears it was not
   * stored rather than a plain 404.
   */
  #lose(rows: readonly LostRow[]): void {
    if (this.#droppedWhileWaiting === rows.length) {
      this.#logger?.warn(
        { path: this.#path, store: this.#label },
        `${this.#label}: ${this.#rows} waiting for the lock on ${this.#path} are past the memory bounds (${MAX_WAITING_ROWS} waiting, or ${MAX_WAITING_BYTES / 1024 / 1024} MiB): the oldest are not kept (a later request naming one is told it could not be stored)`,
      );
    }
    this.#onLost?.(rows);
  }

  /** Takes `entry` out of the answers waiting for the lock, if it is still the one waiting under its id. */
  #forget(entry: WaitingRow): void {
    if (this.#waiting.get(entry.row.id) !== entry) return;
    this.#waiting.delete(entry.row.id);
    this.#waitingBytes -= waitingBytesOf(entry);
  }

  /** A waiting row as a read of the file would see it: within the bounds of one row, not expired. */
  #isUsable(entry: WaitingRow): boolean {
    return (
      entry.bytes <= this.#limits.maxBytes && this.#limits.maxEntries > 0 && entry.storedAtMs > this.#oldestKeptMs()
    );
  }

  #oldestKeptMs(): number {
    return this.#clock.now() - this.#limits.maxAgeMs;
  }

  #deleteRow(id: string): void {
    this.#delete.run(id);
    this.#deleteItems.run(id);
    this.#deleteEvents.run(id);
  }

  #evict(): void {
    this.#expireEvents.run(this.#oldestKeptMs());
    this.#expireItems.run(this.#oldestKeptMs());
    this.#expire.run(this.#oldestKeptMs());
    const totals = this.totals();
    if (totals.count <= this.#limits.maxEntries && totals.bytes <= this.#limits.maxBytes) return;
    const holders = this.#holders.all().map(({ owner, count, bytes, oldest }) => {
      return { owner: String(owner), count: Number(count), bytes: Number(bytes), oldest: Number(oldest) };
    });
    evictByOwner(totals, this.#limits, holders, (owner) => {
      const [oldest, next] = this.#oldestOf.all(owner);
      if (oldest === undefined) return undefined;
      this.#deleteRow(String(oldest.id));
      return { bytes: Number(oldest.bytes), nextOldest: next === undefined ? undefined : Number(next.seq) };
    });
  }
}
