// The embedded state store: daily/monthly counters, sliding logs, learned limits (learned concurrency too), cooldowns,
// prompt calibrations and the context windows learned to be shared in a local SQLite file (node:sqlite), so a
// restart neither spends a day's budget twice nor hammers a provider that told us to wait. The request path never touches the disk: the in-memory books are the source of truth and dirty
// entries are written in one transaction every `flush_interval_ms` and on close.
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { AvailabilityBook, PersistedCooldowns } from "../limits/availability.ts";
import type { BudgetBook, PersistedScope } from "../limits/budgets.ts";
import type { PromptCalibration } from "../limits/prompt-calibration.ts";
import { openSqliteFile } from "../sqlite-file.ts";

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS budget_scopes (scope_id TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS cooldowns (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS prompt_calibration (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS shared_windows (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL, updated_at_ms INTEGER NOT NULL);
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
  #timer: NodeJS.Timeout | undefined;

  constructor(path: string, budgets: BudgetBook, availability: AvailabilityBook, calibration?: PromptCalibration) {
    this.path = path;
    this.#db = openSqliteFile(path);
    this.#db.exec(SCHEMA);
    this.#budgets = budgets;
    this.#availability = availability;
    this.#calibration = calibration;
    this.#upsertScope = this.#db.prepare(
      "INSERT INTO budget_scopes (scope_id, state, updated_at_ms) VALUES (?, ?, ?) ON CONFLICT(scope_id) DO UPDATE SET state = excluded.state, updated_at_ms = excluded.updated_at_ms",
    );
    this.#deleteScope = this.#db.prepare("DELETE FROM budget_scopes WHERE scope_id = ?");
    this.#upsertCooldowns = this.#db.prepare(upsertDocument("cooldowns"));
    this.#upsertCalibration = this.#db.prepare(upsertDocument("prompt_calibration"));
    this.#upsertSharedWindows = this.#db.prepare(upsertDocument("shared_windows"));
  }

  /** Loads what the last run left. Unreadable rows are skipped: old accounting is not worth a failed start. */
  load(): { scopes: number; cooldowns: number; calibrations: number; sharedWindows: number } {
    let scopes = 0;
    for (const row of this.#db.prepare("SELECT scope_id, state FROM budget_scopes").all()) {
      try {
        this.#budgets.importScope(String(row.scope_id), JSON.parse(String(row.state)) as PersistedScope);
        scopes++;
      } catch {
        // skip a corrupt row
      }
    }
    let cooldowns = 0;
    const persisted = this.#readDocument("cooldowns") as PersistedCooldowns | undefined;
    if (persisted !== undefined) {
      try {
        this.#availability.importCooldowns(persisted);
        cooldowns = persisted.deployments.length + persisted.providers.length;
      } catch {
        // skip
      }
    }
    // import() skips whatever is not a calibration, an unreadable document included.
    const calibrations =
      this.#calibration === undefined ? 0 : this.#calibration.import(this.#readDocument("prompt_calibration"));
    // Deployments whose context-length refusal showed one window shared by prompt and output (routing.md "Context
    // fit"): without them a restart sent each one more request to be refused.
    const sharedWindows =
      this.#calibration === undefined ? 0 : this.#calibration.importSharedWindows(this.#readDocument("shared_windows"));
    return { scopes, cooldowns, calibrations, sharedWindows };
  }

  /** The JSON document of a one-row table (cooldowns, prompt_calibration); undefined when absent or unreadable. */
  #readDocument(table: string): unknown {
    const row = this.#db.prepare(`SELECT state FROM ${table} WHERE id = 1`).get();
    if (row === undefined) return undefined;
    try {
      return JSON.parse(String(row.state));
    } catch {
      return undefined;
    }
  }

  start(flushIntervalMs: number): void {
    this.#timer = setInterval(() => this.flush(), flushIntervalMs);
    this.#timer.unref();
  }

  /** Writes every dirty entry in one transaction. */
  flush(nowMs = Date.now()): void {
    const dirtyScopes = this.#budgets.takeDirty();
    const isCooldownsDirty = this.#availability.takeDirty();
    const isCalibrationDirty = this.#calibration?.takeDirty() === true;
    if (dirtyScopes.length === 0 && !isCooldownsDirty && !isCalibrationDirty) return;
    this.#db.exec("BEGIN");
    try {
      for (const scopeId of dirtyScopes) {
        const state = this.#budgets.exportScope(scopeId);
        if (state === undefined) this.#deleteScope.run(scopeId);
        else this.#upsertScope.run(scopeId, JSON.stringify(state), nowMs);
      }
      if (isCooldownsDirty) this.#upsertCooldowns.run(JSON.stringify(this.#availability.exportCooldowns()), nowMs);
      if (isCalibrationDirty) {
        this.#upsertCalibration.run(JSON.stringify(this.#calibration?.export()), nowMs);
        this.#upsertSharedWindows.run(JSON.stringify(this.#calibration?.exportSharedWindows()), nowMs);
      }
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  close(): void {
    if (!this.#db.isOpen) return;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.flush();
    this.#db.close();
  }
}

/** Writes the JSON document of a one-row table (`id` 1: cooldowns, prompt_calibration, shared_windows). */
function upsertDocument(table: string): string {
  return `INSERT INTO ${table} (id, state, updated_at_ms) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state, updated_at_ms = excluded.updated_at_ms`;
}
