// The embedded state file's rows of the tool calls' `extra_content` the Messages and Responses doors keep (Gemini's
// thought signatures: tool-call-extras.ts), written by the embedded state store's flushes (embedded-state-store.ts).
// One row per call, not one document as the other books are: they may reach 32 MiB, and a flush writes only the calls
// that changed since the last one (kept, replaced, or forgotten: then deleted).
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { parseJsonRecord } from "../is-record.ts";
import type { MemoryToolCallExtras, PersistedToolCallExtra } from "./tool-call-extras.ts";

export const TOOL_CALL_EXTRAS_TABLE =
  "CREATE TABLE IF NOT EXISTS tool_call_extras (call_key TEXT PRIMARY KEY, extra TEXT NOT NULL, expires_at_ms INTEGER NOT NULL);";

export class ToolCallExtrasRows {
  readonly #db: DatabaseSync;
  readonly #extras: MemoryToolCallExtras;
  readonly #upsert: StatementSync;
  readonly #delete: StatementSync;

  /** `db` has the table (TOOL_CALL_EXTRAS_TABLE). */
  constructor(db: DatabaseSync, extras: MemoryToolCallExtras) {
    this.#db = db;
    this.#extras = extras;
    this.#upsert = db.prepare(
      "INSERT INTO tool_call_extras (call_key, extra, expires_at_ms) VALUES (?, ?, ?) ON CONFLICT(call_key) DO UPDATE SET extra = excluded.extra, expires_at_ms = excluded.expires_at_ms",
    );
    this.#delete = db.prepare("DELETE FROM tool_call_extras WHERE call_key = ?");
  }

  /**
   * Gives the memory store what the last run kept (each until its own expiry, under the store's bounds) and from
   * then on notes its changes for the flushes. Returns how many calls are kept.
   */
  load(nowMs: number): number {
    const { rows, unreadable } = rowsOf(this.#db, nowMs);
    // Tracked before the restore, whose evictions are noted only then (tracked after it, none was: a row dropped
    // over the bounds stayed in the file for good).
    this.#extras.trackChanges();
    const kept = this.#extras.restore(rows);
    this.#extras.takeChanged();
    // The changes are what memory does not hold as the file does: a row dropped over the bounds or unreadable
    // (deleted), or an expiry cut to the TTL from now (a clock that was ahead: rewritten, else restored long at each
    // restart). The rest is in the file as it is.
    const changed = rows
      .filter((row) => this.#extras.persisted(row.id)?.expiresAtMs !== row.expiresAtMs)
      .map((row) => row.id);
    this.#extras.restoreChanged([...changed, ...unreadable]);
    // Expired while the gateway was stopped: never loaded, so never a change; deleted here once.
    this.#db.prepare("DELETE FROM tool_call_extras WHERE expires_at_ms <= ?").run(nowMs);
    return kept;
  }

  /** The calls changed since the last call, for a flush (`write` inside its transaction, `restore` if it failed). */
  takeChanged(): readonly string[] {
    return this.#extras.takeChanged();
  }

  write(changed: readonly string[]): void {
    for (const key of changed) {
      const kept = this.#extras.persisted(key);
      if (kept === undefined) this.#delete.run(key);
      else this.#upsert.run(key, JSON.stringify(kept.extra), kept.expiresAtMs);
    }
  }

  restore(changed: readonly string[]): void {
    this.#extras.restoreChanged(changed);
  }
}

/** The kept calls not expired by `nowMs`, oldest first, and the keys of the unreadable rows (skipped). */
function rowsOf(
  db: DatabaseSync,
  nowMs: number,
): { readonly rows: PersistedToolCallExtra[]; readonly unreadable: string[] } {
  const found = db
    .prepare(
      "SELECT call_key, extra, expires_at_ms FROM tool_call_extras WHERE expires_at_ms > ? ORDER BY expires_at_ms",
    )
    .all(nowMs);
  const rows: PersistedToolCallExtra[] = [];
  const unreadable: string[] = [];
  for (const row of found) {
    const id = String(row.call_key);
    const extra = parseJsonRecord(String(row.extra));
    if (extra === undefined) unreadable.push(id);
    else rows.push({ id, extra, expiresAtMs: Number(row.expires_at_ms) });
  }
  return { rows, unreadable };
}
