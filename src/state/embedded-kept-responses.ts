// Kept Responses API answers (`store`, `previous_response_id`, `item_reference`) in the embedded SQLite file
// (node:sqlite), in tables of their own next to the state tables, so a conversation survives a gateway restart.
// Rows are opaque JSON: the row and limit shapes match protocols' KeptResponseRows (state/ does not import
// protocols). Bounded by count, total bytes and age; the oldest rows go first. Writes are small and synchronous
// (one transaction per kept answer), like the request log's.
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { Clock } from "../clock.ts";
import { openSqliteFile } from "../sqlite-file.ts";

export interface KeptResponseRow {
  readonly id: string;
  readonly json: string;
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

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS kept_responses (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    stored_at_ms INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    json TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS kept_responses_stored ON kept_responses (stored_at_ms);
  CREATE TABLE IF NOT EXISTS kept_response_items (item_id TEXT PRIMARY KEY, response_id TEXT NOT NULL);
  CREATE INDEX IF NOT EXISTS kept_response_items_response ON kept_response_items (response_id);
`;

export class EmbeddedKeptResponses {
  readonly kind = "embedded";
  readonly #db: DatabaseSync;
  readonly #limits: KeptResponseLimits;
  readonly #clock: Clock;
  readonly #insert: StatementSync;
  readonly #insertItem: StatementSync;
  readonly #select: StatementSync;
  readonly #selectByItem: StatementSync;
  readonly #delete: StatementSync;
  readonly #deleteItems: StatementSync;
  readonly #expire: StatementSync;
  readonly #expireItems: StatementSync;
  readonly #totals: StatementSync;
  readonly #oldest: StatementSync;

  constructor(path: string, limits: KeptResponseLimits, clock: Clock) {
    this.#db = openSqliteFile(path);
    this.#limits = limits;
    this.#clock = clock;
    this.#db.exec(SCHEMA);
    this.#insert = this.#db.prepare("INSERT INTO kept_responses (id, stored_at_ms, bytes, json) VALUES (?, ?, ?, ?)");
    this.#insertItem = this.#db.prepare(
      "INSERT OR REPLACE INTO kept_response_items (item_id, response_id) VALUES (?, ?)",
    );
    this.#select = this.#db.prepare("SELECT json FROM kept_responses WHERE id = ? AND stored_at_ms > ?");
    this.#selectByItem = this.#db.prepare(
      "SELECT r.json FROM kept_response_items i JOIN kept_responses r ON r.id = i.response_id WHERE i.item_id = ? AND r.stored_at_ms > ?",
    );
    this.#delete = this.#db.prepare("DELETE FROM kept_responses WHERE id = ?");
    this.#deleteItems = this.#db.prepare("DELETE FROM kept_response_items WHERE response_id = ?");
    this.#expire = this.#db.prepare("DELETE FROM kept_responses WHERE stored_at_ms <= ?");
    this.#expireItems = this.#db.prepare(
      "DELETE FROM kept_response_items WHERE response_id IN (SELECT id FROM kept_responses WHERE stored_at_ms <= ?)",
    );
    this.#totals = this.#db.prepare("SELECT COUNT(*) AS count, COALESCE(SUM(bytes), 0) AS bytes FROM kept_responses");
    this.#oldest = this.#db.prepare("SELECT id, bytes FROM kept_responses ORDER BY seq LIMIT ?");
  }

  /** Keeps a row (replacing one with the same id), then evicts expired and oldest rows past the bounds. */
  async put(row: KeptResponseRow): Promise<void> {
    const bytes = Buffer.byteLength(row.json);
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      this.#deleteRow(row.id);
      if (bytes <= this.#limits.maxBytes && this.#limits.maxEntries > 0) {
        this.#insert.run(row.id, this.#clock.now(), bytes, row.json);
        for (const itemId of row.itemIds) this.#insertItem.run(itemId, row.id);
      }
      this.#evict();
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  async get(id: string): Promise<string | undefined> {
    const row = this.#select.get(id, this.#oldestKeptMs());
    return row === undefined ? undefined : String(row.json);
  }

  async getByItem(itemId: string): Promise<string | undefined> {
    const row = this.#selectByItem.get(itemId, this.#oldestKeptMs());
    return row === undefined ? undefined : String(row.json);
  }

  async delete(id: string): Promise<boolean> {
    const isKept = (await this.get(id)) !== undefined;
    this.#deleteRow(id);
    return isKept;
  }

  /** How many rows and bytes are kept (expired rows not yet evicted included). */
  totals(): { count: number; bytes: number } {
    const row = this.#totals.get();
    return { count: Number(row?.count ?? 0), bytes: Number(row?.bytes ?? 0) };
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  #oldestKeptMs(): number {
    return this.#clock.now() - this.#limits.maxAgeMs;
  }

  #deleteRow(id: string): void {
    this.#delete.run(id);
    this.#deleteItems.run(id);
  }

  #evict(): void {
    this.#expireItems.run(this.#oldestKeptMs());
    this.#expire.run(this.#oldestKeptMs());
    let { count, bytes } = this.totals();
    const excess = count - this.#limits.maxEntries;
    if (excess > 0 || bytes > this.#limits.maxBytes) {
      // Oldest first; at most every row is read once (a cap far below the data means evicting most of it).
      for (const row of this.#oldest.all(count)) {
        if (count <= this.#limits.maxEntries && bytes <= this.#limits.maxBytes) break;
        this.#deleteRow(String(row.id));
        count--;
        bytes -= Number(row.bytes);
      }
    }
  }
}
