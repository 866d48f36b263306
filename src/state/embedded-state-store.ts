// The embedded state store: daily/monthly counters, sliding logs, learned limits (learned concurrency too), cooldowns,
// prompt calibrations, the context windows learned to be shared, the features deployments refused and the doors'
// kept thought signatures in a local SQLite file (node:sqlite), so a restart neither spends a day's budget twice nor
// hammers a provider that told us to wait, nor pays a refusal again to learn what it knew, nor loses the signatures
// of the agent sessions under way. The request path never touches the disk: the in-memory books are the source of truth and dirty
// entries are written in one transaction every `flush_interval_ms` and on close. A write that fails (the file locked
// by another process, for which the timer's flush does not wait; a full or read-only disk; a file damaged since the
// start) must not end the process: the books in memory keep serving, what the write held stays dirty for the next
// flush, and the failure shows in the log (once, and once more when writing works again) and in /health's `state`.
// The file stays whole (about 420 lines): every book is written in one transaction, so the flush, what a failed one
// restores, the lock and the close's last write are one piece.
import { existsSync } from "node:fs";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { AvailabilityBook, PersistedCooldowns } from "../limits/availability.ts";
import type { BudgetBook, PersistedScope } from "../limits/budgets.ts";
import type { PromptCalibration } from "../limits/prompt-calibration.ts";
import type { RefusedFeatures } from "../limits/refused-features.ts";
import { BUSY_TIMEOUT_MS, isBusyError, isDamagedFileError, openSqliteFile, whenUnlocked } from "../sqlite-file.ts";
import { StateFileLock } from "./state-file-lock.ts";
import type { StateLogger, StateStatus } from "./state-types.ts";
import type { MemoryToolCallExtras } from "./tool-call-extras.ts";
import { TOOL_CALL_EXTRAS_TABLE, ToolCallExtrasRows } from "./tool-call-extras-rows.ts";

/**
 * ms the flush on the timer waits for a write lock another connection holds: none. node:sqlite is synchronous, so
 * any wait stalls every request of the process (100 ms per flush until 2026-12-06, for as long as the lock was
 * held); a busy file keeps what the flush held dirty and is tried again at the next one instead. The last flush, at
 * close, waits up to BUSY_TIMEOUT_MS by a timer (`close`); a second signal's, its own bound.
 */
const TIMER_FLUSH_BUSY_TIMEOUT_MS = 0;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS budget_scopes (scope_id TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS cooldowns (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS prompt_calibration (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS shared_windows (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS refused_features (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
  ${TOOL_CALL_EXTRAS_TABLE}
`;

export class EmbeddedStateStore {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #budgets: BudgetBook;
  readonly #availability: AvailabilityBook;
  readonly #upsertScope: StatementSync;
  readonly #deleteScope: StatementSync;
  readonly #upsertCooldowns: StatementSync;
  readonly #calibration: PromptCalibration | undefined;
  readonly #upsertCalibration: StatementSync;
  readonly #upsertSharedWindows: StatementSync;
  readonly #refusedFeatures: RefusedFeatures | undefined;
  readonly #upsertRefusedFeatures: StatementSync;
  /** The doors' kept thought signatures (tool-call-extras-rows.ts). */
  readonly #toolCallExtras: ToolCallExtrasRows | undefined;
  readonly #logger: StateLogger | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Set from a failed write until one works again: when writing began to fail, and the latest reason. */
  #failure: { readonly sinceMs: number; readonly message: string; readonly isDamaged: boolean } | undefined;
  readonly #lock: StateFileLock;
  /** Another gateway process has the file open (state-file-lock.ts): told at start, tried again at each flush. */
  #isShared = false;
  /**
   * Since when the flushes find the write lock taken. Without a wait, a write of another process's that happens to
   * overlap a flush (a restart's overlap, a sqlite3 shell) is found far more often than a lock held for long: the
   * first busy flush is only tried again; a lock still held at the next interval is told (log, /health), as unwritten
   * since this first one. Undefined: the last flush was not refused a lock.
   */
  #busySinceMs: number | undefined;

  constructor(
    path: string,
    budgets: BudgetBook,
    availability: AvailabilityBook,
    calibration?: PromptCalibration,
    logger?: StateLogger,
    refusedFeatures?: RefusedFeatures,
    toolCallExtras?: MemoryToolCallExtras,
  ) {
    this.path = path;
    this.#logger = logger;
    this.#lock = new StateFileLock(path);
    this.#db = openSqliteFile(path);
    try {
      this.#db.exec(SCHEMA);
    } catch (error) {
      this.#db.close(); // a damaged file is set aside by the caller: no handle may stay open on it
      throw error;
    }
    this.#budgets = budgets;
    this.#availability = availability;
    this.#calibration = calibration;
    this.#refusedFeatures = refusedFeatures;
    this.#upsertScope = this.#db.prepare(
      "INSERT INTO budget_scopes (scope_id, state, updated_at_ms) VALUES (?, ?, ?) ON CONFLICT(scope_id) DO UPDATE SET state = excluded.state, updated_at_ms = excluded.updated_at_ms",
    );
    this.#deleteScope = this.#db.prepare("DELETE FROM budget_scopes WHERE scope_id = ?");
    this.#upsertCooldowns = this.#db.prepare(upsertDocument("cooldowns"));
    this.#upsertCalibration = this.#db.prepare(upsertDocument("prompt_calibration"));
    this.#upsertSharedWindows = this.#db.prepare(upsertDocument("shared_windows"));
    this.#upsertRefusedFeatures = this.#db.prepare(upsertDocument("refused_features"));
    this.#toolCallExtras = toolCallExtras === undefined ? undefined : new ToolCallExtrasRows(this.#db, toolCallExtras);
  }

  /**
   * Loads what the last run left. Unreadable rows are skipped: old accounting is not worth a failed start. Refused
   * features whose lesson ended by `nowMs` are dropped.
   */
  load(nowMs = Date.now()): LoadedState {
    return {
      ...loadBooks(this.#db, this.#budgets, this.#availability, this.#calibration, this.#refusedFeatures, nowMs),
      // Without them a restart sent Gemini the fallback for every call of the sessions under way (protocols.md).
      toolCallExtras: this.#toolCallExtras?.load(nowMs) ?? 0,
    };
  }

  start(flushIntervalMs: number): void {
    this.#db.exec(`PRAGMA busy_timeout = ${TIMER_FLUSH_BUSY_TIMEOUT_MS}`);
    if (!this.#lock.tryTake()) {
      this.#isShared = true;
      this.#logger?.warn(
        { path: this.path },
        `another gateway process has ${this.path} open: budgets and cooldowns are not shared through the file (each process counts its own; the file keeps whichever wrote last) and the request log beside it is written by both. Expected for a moment while a restart overlaps the old process; otherwise give each gateway its own state.path, or share state with state.redis_url`,
      );
    }
    this.#timer = setInterval(() => this.flushOrKeep(Date.now(), true), flushIntervalMs);
    this.#timer.unref();
  }

  /** For /health: degraded while writes fail (the gateway serves from memory; a restart would lose what is unwritten). */
  status(): StateStatus {
    const failure = this.#failure;
    if (failure === undefined) {
      const shared = this.#isShared ? " (also open in another gateway process: not shared through the file)" : "";
      return { kind: "embedded", isDegraded: false, detail: `${this.path}${shared}` };
    }
    const since = new Date(failure.sinceMs).toISOString();
    if (failure.isDamaged) {
      return {
        kind: "embedded",
        isDegraded: true,
        detail: `${this.path} is damaged (${failure.message}), found at ${since}: budgets and cooldowns are counted in memory only until it is repaired (the log says how)`,
      };
    }
    return {
      kind: "embedded",
      isDegraded: true,
      detail: `${this.path} not written since ${since} (${failure.message}); serving from memory, retried at each flush`,
    };
  }

  /**
   * `flush`, never throwing: a failure is logged when writing begins to fail (or fails for another reason) and
   * when it works again, not at every interval. Returns whether everything dirty is written. `isTimed`: the timer's
   * flush, whose first one to find the lock taken is only tried again at the next interval (#busySinceMs).
   */
  flushOrKeep(nowMs = Date.now(), isTimed = false): boolean {
    if (this.#isShared && this.#lock.tryTake()) {
      this.#isShared = false;
      this.#logger?.info({ path: this.path }, "state file: no other gateway process has it open any more");
    }
    try {
      this.flush(nowMs);
    } catch (error) {
      this.#failed(error, nowMs, isTimed);
      return false;
    }
    this.#busySinceMs = undefined;
    if (this.#failure !== undefined) {
      this.#logger?.info({ path: this.path }, "state file written again");
      this.#failure = undefined;
    }
    return true;
  }

  /** A flush failed: what it held is dirty again; tells the failure once (a lasting one is not told at each flush). */
  #failed(error: unknown, nowMs: number, isTimed: boolean): void {
    const busySinceMs = this.#busySinceMs;
    this.#busySinceMs = isBusyError(error) ? (busySinceMs ?? nowMs) : undefined;
    if (isTimed && busySinceMs === undefined && this.#failure === undefined && isBusyError(error)) return;
    // Damage does not heal: once found it is what the file's state is, whatever later flushes fail with (a lock,
    // another page's damage), until a write works (the file replaced by hand) or the next start sets it aside.
    if (this.#failure?.isDamaged === true) return;
    const message = error instanceof Error ? error.message : String(error);
    const isDamaged = isDamagedFileError(error);
    if (isDamaged) {
      this.#logger?.warn(
        { path: this.path, error: message },
        `state file damaged (${message}): budgets and cooldowns are counted in memory only from now on and lost when the gateway stops. To repair, stop the gateway and move ${this.path} aside (budgets and cooldowns start afresh; a start that finds the damage does that itself, as ${this.path}.damaged-<time>), or rebuild it with sqlite3's .recover`,
      );
    } else if (this.#failure?.message !== message) {
      this.#logger?.warn(
        { path: this.path, error: message },
        `state file not written (${message}): budgets and cooldowns are kept in memory and written when it works again; a restart before then loses what is unwritten`,
      );
    }
    this.#failure = { sinceMs: this.#failure?.sinceMs ?? busySinceMs ?? nowMs, message, isDamaged };
  }

  /** Writes every dirty entry in one transaction; when that fails, they stay dirty (for the next flush) and it throws. */
  flush(nowMs = Date.now()): void {
    const dirtyScopes = this.#budgets.takeDirty();
    const isCooldownsDirty = this.#availability.takeDirty();
    const isCalibrationDirty = this.#calibration?.takeDirty() === true;
    const areRefusalsDirty = this.#refusedFeatures?.takeDirty() === true;
    const calls = this.#toolCallExtras?.takeChanged() ?? [];
    const isClean = dirtyScopes.length === 0 && !isCooldownsDirty && !isCalibrationDirty && !areRefusalsDirty;
    if (isClean && calls.length === 0) return;
    try {
      // Serialised before BEGIN: the file's write lock (other processes on the same file wait for it) is held only
      // for the writes themselves, not for the JSON of every dirty scope.
      const scopeRows = dirtyScopes.map((scopeId) => {
        const state = this.#budgets.exportScope(scopeId);
        return [scopeId, state === undefined ? undefined : JSON.stringify(state)] as const;
      });
      const cooldowns = isCooldownsDirty ? JSON.stringify(this.#availability.exportCooldowns()) : undefined;
      const calibration = isCalibrationDirty ? JSON.stringify(this.#calibration?.export()) : undefined;
      const sharedWindows = isCalibrationDirty ? JSON.stringify(this.#calibration?.exportSharedWindows()) : undefined;
      const refusals = areRefusalsDirty ? JSON.stringify(this.#refusedFeatures?.export(nowMs)) : undefined;
      this.#db.exec("BEGIN");
      for (const [scopeId, json] of scopeRows) {
        if (json === undefined) this.#deleteScope.run(scopeId);
        else this.#upsertScope.run(scopeId, json, nowMs);
      }
      if (cooldowns !== undefined) this.#upsertCooldowns.run(cooldowns, nowMs);
      if (calibration !== undefined) this.#upsertCalibration.run(calibration, nowMs);
      if (sharedWindows !== undefined) this.#upsertSharedWindows.run(sharedWindows, nowMs);
      if (refusals !== undefined) this.#upsertRefusedFeatures.run(refusals, nowMs);
      this.#toolCallExtras?.write(calls);
      this.#db.exec("COMMIT");
    } catch (error) {
      // A failed COMMIT (SQLITE_BUSY, SQLITE_FULL) may leave the transaction open; a failed BEGIN leaves none.
      try {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      } catch {
        // An I/O error can fail the rollback too; SQLite ends the transaction itself then. What matters is below.
      }
      this.#budgets.restoreDirty(dirtyScopes);
      if (isCooldownsDirty) this.#availability.restoreDirty();
      if (isCalibrationDirty) this.#calibration?.restoreDirty();
      if (areRefusalsDirty) this.#refusedFeatures?.restoreDirty();
      this.#toolCallExtras?.restore(calls);
      throw error;
    }
  }

  /** Closes the file without writing anything (a file found damaged at start, set aside by the caller). */
  abandon(): void {
    if (this.#db.isOpen) this.#db.close();
    this.#lock.release();
  }

  /**
   * The last flush before an exit that will not wait for `close` (a second signal during a graceful shutdown),
   * waiting at most `maxWaitMs` for a lock another connection holds: node:sqlite is synchronous, so this is written
   * before the exit runs. The file is left open: the process ends right after, and the OS drops its locks.
   */
  writeBeforeExit(maxWaitMs: number): void {
    if (!this.#db.isOpen) return;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    try {
      this.#db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(maxWaitMs))}`);
    } catch {
      // The flush below reports what is wrong with the file.
    }
    try {
      this.flush();
    } catch (error) {
      // Said as the close says it: the exit comes next (a "not written" warning promised a later write, once).
      this.#lostAtExit(error, Math.max(0, Math.floor(maxWaitMs)));
    }
  }

  /**
   * The last flush, then the file is closed: a failed flush is logged (what it held is lost), never thrown. It waits
   * at most `maxWaitMs` for a lock another process holds, by a timer (`whenUnlocked`), not inside SQLite: the event
   * loop runs meanwhile, so the exit's other final writes (the kept answers', the conversations') wait for the same
   * lock at the same time, under one bound, rather than 2 s each in turn (the sum, ~6 s, until 2026-12-06), and the
   * shutdown's own timers still fire. Closing twice returns the first close.
   */
  close(maxWaitMs = BUSY_TIMEOUT_MS): Promise<void> {
    this.#closing ??= this.#close(maxWaitMs);
    return this.#closing;
  }

  #closing: Promise<void> | undefined;

  /** Written and closed before this returns when the lock is free (the usual case); else by a timer, bounded. */
  #close(maxWaitMs: number): Promise<void> {
    if (!this.#db.isOpen) return Promise.resolve();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    const lastWrite = (): void => {
      // Set at each attempt: a second signal's write (writeBeforeExit) may have set its own wait meanwhile.
      this.#db.exec("PRAGMA busy_timeout = 0");
      this.flush();
    };
    try {
      lastWrite();
    } catch (error) {
      if (!isBusyError(error) || maxWaitMs <= 0) {
        this.#lostAtExit(error, 0);
        this.#release();
        return Promise.resolve();
      }
      return whenUnlocked(lastWrite, maxWaitMs).then(
        () => this.#release(),
        (late: unknown) => {
          this.#lostAtExit(late, maxWaitMs);
          this.#release();
        },
      );
    }
    this.#release();
    return Promise.resolve();
  }

  #lostAtExit(error: unknown, waitedMs: number): void {
    const message = error instanceof Error ? error.message : String(error);
    const waited = isBusyError(error) ? `, after ${waitedMs} ms waiting for the lock another process holds` : "";
    this.#logger?.warn(
      { path: this.path, error: message, store: "state" },
      `state file: the last write before the exit was not saved (${message}${waited}): the budgets, cooldowns and learned limits counted since the last flush are lost`,
    );
  }

  #release(): void {
    if (this.#db.isOpen) this.#db.close();
    this.#lock.release();
  }
}

/** Writes the JSON document of a one-row table (`id` 1: cooldowns, prompt_calibration, shared_windows, refused_features). */
function upsertDocument(table: string): string {
  return `INSERT INTO ${table} (id, state, updated_at_ms) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state, updated_at_ms = excluded.updated_at_ms`;
}

export interface LoadedState extends LoadedBooks {
  readonly toolCallExtras: number;
}

interface LoadedBooks {
  readonly scopes: number;
  readonly cooldowns: number;
  readonly calibrations: number;
  readonly sharedWindows: number;
  readonly refusedFeatures: number;
}

/**
 * The books as a state file holds them, for a command that only reads them (`llm-gateway route`) while a gateway
 * may be serving from the file: opened read-only, then closed at once. Nothing is created, written or moved, and the
 * lock a gateway checks (state-file-lock.ts) is not taken. A missing file holds nothing; a file that cannot be read
 * (damaged, locked past the busy timeout) throws, and the caller goes on without it.
 */
export function readStateFile(
  path: string,
  budgets: BudgetBook,
  availability: AvailabilityBook,
  calibration?: PromptCalibration,
  refusedFeatures?: RefusedFeatures,
  nowMs = Date.now(),
): LoadedBooks | undefined {
  if (!existsSync(path)) return undefined;
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    return loadBooks(db, budgets, availability, calibration, refusedFeatures, nowMs);
  } finally {
    db.close();
  }
}

/** Loads the rows of a state file into the books; a table an older file lacks holds nothing. */
function loadBooks(
  db: DatabaseSync,
  budgets: BudgetBook,
  availability: AvailabilityBook,
  calibration: PromptCalibration | undefined,
  refusedFeatures: RefusedFeatures | undefined,
  nowMs: number,
): LoadedBooks {
  const tables = new Set(
    db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
      .all()
      .map((row) => String(row.name)),
  );
  const readDocument = (table: string): unknown => {
    if (!tables.has(table)) return undefined;
    const row = db.prepare(`SELECT state FROM ${table} WHERE id = 1`).get();
    if (row === undefined) return undefined;
    try {
      return JSON.parse(String(row.state));
    } catch {
      return undefined;
    }
  };
  let scopes = 0;
  const scopeRows = tables.has("budget_scopes") ? db.prepare("SELECT scope_id, state FROM budget_scopes").all() : [];
  for (const row of scopeRows) {
    try {
      budgets.importScope(String(row.scope_id), JSON.parse(String(row.state)) as PersistedScope);
      scopes++;
    } catch {
      // skip a corrupt row
    }
  }
  let cooldowns = 0;
  const persisted = readDocument("cooldowns") as PersistedCooldowns | undefined;
  if (persisted !== undefined) {
    try {
      availability.importCooldowns(persisted);
      cooldowns = persisted.deployments.length + persisted.providers.length;
    } catch {
      // skip
    }
  }
  // import() skips whatever is not a calibration, an unreadable document included.
  const calibrations = calibration === undefined ? 0 : calibration.import(readDocument("prompt_calibration"));
  // Deployments whose context-length refusal showed one window shared by prompt and output (routing.md "Context
  // fit"): without them a restart sent each one more request to be refused.
  const sharedWindows = calibration === undefined ? 0 : calibration.importSharedWindows(readDocument("shared_windows"));
  // Features a deployment refused (routing.md "Learned refusals"), each until its own end: without them a restart
  // sent each one more request carrying the feature to be refused.
  const refused = refusedFeatures?.import(readDocument("refused_features"), nowMs) ?? 0;
  return { scopes, cooldowns, calibrations, sharedWindows, refusedFeatures: refused };
}
