// The request log in the embedded SQLite file (node:sqlite), in a table of its own next to the state tables.
// Filters run in SQL over indexed start times; model and provider lists are stored as delimited text.
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { openSqliteFile } from "../sqlite-file.ts";
import type { RequestLogBackend, RequestLogFilter, StoredRequest } from "./request-log.ts";

/** Around every name in the delimited lists, so `instr` matches whole names only. */
const SEPARATOR = "\n";

// No index on the id: ids are random, and keeping their B-tree more than doubled the cost of every insert (15 µs
// vs 6 µs per row, measured; the start-time index grows at its end and costs next to nothing). Inserts are the
// hot path; a lookup by id is a person opening one request, answered from memory for recent ones (the
// dashboard's activity) and by a scan otherwise (~6 ms at the default 10,000 rows). `request_log`, the table of
// earlier versions with the id as primary key, is dropped.
const SCHEMA = `
  DROP TABLE IF EXISTS request_log;
  CREATE TABLE IF NOT EXISTS request_records (
    id TEXT NOT NULL,
    started_at_ms INTEGER NOT NULL,
    models TEXT NOT NULL,
    providers TEXT NOT NULL,
    status INTEGER NOT NULL,
    record TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS request_records_started ON request_records (started_at_ms);
`;

const INSERT = "INSERT INTO request_records (id, started_at_ms, models, providers, status, record) VALUES";
const ROW_VALUES = "(?, ?, ?, ?, ?, ?)";
/** 32 rows x 6 values, well under SQLite's limit of 32,766 bound values per statement. */
const ROWS_PER_STATEMENT = 32;

export class SqliteRequestLogBackend implements RequestLogBackend {
  readonly kind = "embedded";
  readonly #db: DatabaseSync;
  readonly #insert: StatementSync;
  readonly #insertGroup: StatementSync;
  readonly #pruneByAge: StatementSync;
  readonly #pruneByCount: StatementSync;

  constructor(path: string) {
    this.#db = openSqliteFile(path);
    this.#db.exec(SCHEMA);
    this.#insert = this.#db.prepare(`${INSERT} ${ROW_VALUES}`);
    // Full groups of rows in one statement: a quarter less CPU per row than one statement per row.
    this.#insertGroup = this.#db.prepare(`${INSERT} ${Array(ROWS_PER_STATEMENT).fill(ROW_VALUES).join(", ")}`);
    // Runs after every batch (twice a second under load). By age through the start-time index; by count through
    // the rowid, which grows with every insert: the newest `max_entries` finished requests stay, at the cost of
    // the rows deleted (ordering by start time with an OFFSET walked every kept row each time).
    this.#pruneByAge = this.#db.prepare("DELETE FROM request_records WHERE started_at_ms < ?");
    this.#pruneByCount = this.#db.prepare(
      "DELETE FROM request_records WHERE rowid <= (SELECT max(rowid) FROM request_records) - ?",
    );
  }

  async append(rows: readonly StoredRequest[]): Promise<void> {
    this.#db.exec("BEGIN");
    try {
      let index = 0;
      for (; index + ROWS_PER_STATEMENT <= rows.length; index += ROWS_PER_STATEMENT) {
        this.#insertGroup.run(...rows.slice(index, index + ROWS_PER_STATEMENT).flatMap(rowValues));
      }
      for (; index < rows.length; index++) this.#insert.run(...rowValues(rows[index] as StoredRequest));
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  async query(filter: RequestLogFilter): Promise<string[]> {
    const conditions: string[] = [];
    const values: (string | number)[] = [];
    if (filter.sinceMs !== undefined) {
      conditions.push("started_at_ms >= ?");
      values.push(filter.sinceMs);
    }
    if (filter.status !== undefined) {
      conditions.push("status = ?");
      values.push(filter.status);
    }
    if (filter.model !== undefined) {
      conditions.push("instr(models, ?) > 0");
      values.push(`${SEPARATOR}${filter.model}${SEPARATOR}`);
    }
    if (filter.provider !== undefined) {
      conditions.push("instr(providers, ?) > 0");
      values.push(`${SEPARATOR}${filter.provider}${SEPARATOR}`);
    }
    const where = conditions.length === 0 ? "" : `WHERE ${conditions.join(" AND ")}`;
    const rows = this.#db
      .prepare(`SELECT record FROM request_records ${where} ORDER BY started_at_ms DESC, rowid DESC LIMIT ?`)
      .all(...values, filter.limit);
    return rows.map((row) => String(row.record));
  }

  async get(id: string): Promise<string | undefined> {
    // Newest first: a client may reuse its `x-request-id`; the latest request with it is the one asked about.
    const row = this.#db.prepare("SELECT record FROM request_records WHERE id = ? ORDER BY rowid DESC LIMIT 1").get(id);
    return row === undefined ? undefined : String(row.record);
  }

  async prune(maxEntries: number, oldestStartedAtMs: number): Promise<void> {
    this.#pruneByAge.run(oldestStartedAtMs);
    this.#pruneByCount.run(maxEntries);
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }
}

function rowValues(row: StoredRequest): (string | number)[] {
  return [row.id, row.startedAtMs, delimited(row.models), delimited(row.providers), row.status, row.json];
}

function delimited(names: readonly string[]): string {
  return `${SEPARATOR}${names.join(SEPARATOR)}${SEPARATOR}`;
}
