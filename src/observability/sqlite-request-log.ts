// The request log in the embedded SQLite file (node:sqlite), in a table of its own next to the state tables.
// Filters run in SQL over indexed start times; model and provider lists are stored as delimited text.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { RequestLogBackend, RequestLogFilter, StoredRequest } from "./request-log.ts";

/** Around every name in the delimited lists, so `instr` matches whole names only. */
const SEPARATOR = "\n";

// Two tables, filled in turn: rows go to the current one until it holds `max_entries`, then the other one is
// emptied at once (`DELETE` without `WHERE`: SQLite frees its pages without visiting a row) and becomes current.
// Reads see the newest `max_entries` rows by sequence number, so retention is exactly what it was with one table;
// the older rows left in the other table are invisible until it is emptied. Deleting rows one by one beyond
// `max_entries` (the one-table design) cost as much as inserting them, 3.3-3.7 µs per row measured, paid by every
// request once a long-running gateway's log is full (a benchmark run is too short to fill it); emptying a table
// costs ~0.4 µs per row. Rows older than `max_age_ms` are still deleted by a ranged delete on the start-time index.
//
// No index on the id: ids are random, and keeping their B-tree more than doubled the cost of every insert (15 µs
// vs 6 µs per row, measured; the start-time index grows at its end and costs next to nothing). A lookup by id is a
// person opening one request, answered from memory for recent ones (the dashboard's activity) and by a scan
// otherwise (~6 ms at the default 10,000 rows). `seq` is the rowid: the order rows were written in.
// `request_records` (one table) and `request_log` (the id as primary key) are earlier versions' tables.
const TABLES = ["request_records_a", "request_records_b"] as const;
type Table = (typeof TABLES)[number];

const COLUMNS = "seq, id, started_at_ms, models, providers, status, record";
const ROW_VALUES = "(?, ?, ?, ?, ?, ?, ?)";
/** 32 rows x 7 values, well under SQLite's limit of 32,766 bound values per statement. */
const ROWS_PER_STATEMENT = 32;

const SCHEMA = `
  DROP TABLE IF EXISTS request_log;
  ${TABLES.map(
    (table) => `
  CREATE TABLE IF NOT EXISTS ${table} (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    started_at_ms INTEGER NOT NULL,
    models TEXT NOT NULL,
    providers TEXT NOT NULL,
    status INTEGER NOT NULL,
    record TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS ${table}_started ON ${table} (started_at_ms);`,
  ).join("")}
`;

/** Both tables as one, for reads. */
const BOTH = TABLES.map((table) => `SELECT ${COLUMNS} FROM ${table}`).join(" UNION ALL ");

interface TableStatements {
  readonly insert: StatementSync;
  readonly insertGroup: StatementSync;
  readonly pruneByAge: StatementSync;
  readonly count: StatementSync;
}

export class SqliteRequestLogBackend implements RequestLogBackend {
  readonly kind = "embedded";
  readonly #db: DatabaseSync;
  readonly #statements: Record<Table, TableStatements>;
  #current: Table;
  /** Rows in the current table. */
  #currentRows: number;
  /** The last row's sequence number. */
  #lastSeq: number;
  /** From the last `prune`: rows with `seq` at most `#lastSeq - #maxEntries` are no longer visible. */
  #maxEntries = Number.POSITIVE_INFINITY;

  constructor(path: string) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    this.#db = new DatabaseSync(path);
    // The state store may hold the same file open: wait for its short write transactions instead of failing.
    this.#db.exec("PRAGMA busy_timeout = 2000;");
    if (path !== ":memory:") this.#db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
    this.#db.exec(SCHEMA);
    this.#migrateOneTable();
    this.#statements = {
      request_records_a: this.#prepare("request_records_a"),
      request_records_b: this.#prepare("request_records_b"),
    };
    const lastOf = (table: Table): number =>
      Number(this.#db.prepare(`SELECT coalesce(max(seq), 0) AS last FROM ${table}`).get()?.last ?? 0);
    const [lastA, lastB] = [lastOf("request_records_a"), lastOf("request_records_b")];
    this.#current = lastB > lastA ? "request_records_b" : "request_records_a";
    this.#lastSeq = Math.max(lastA, lastB);
    this.#currentRows = this.#rowsOf(this.#current);
  }

  async append(rows: readonly StoredRequest[]): Promise<void> {
    const { insert, insertGroup } = this.#statements[this.#current];
    const firstSeq = this.#lastSeq + 1;
    this.#db.exec("BEGIN");
    try {
      let index = 0;
      // Full groups of rows in one statement: a quarter less CPU per row than one statement per row.
      for (; index + ROWS_PER_STATEMENT <= rows.length; index += ROWS_PER_STATEMENT) {
        const values: (string | number)[] = [];
        for (let offset = 0; offset < ROWS_PER_STATEMENT; offset++) {
          values.push(...rowValues(firstSeq + index + offset, rows[index + offset] as StoredRequest));
        }
        insertGroup.run(...values);
      }
      for (; index < rows.length; index++) insert.run(...rowValues(firstSeq + index, rows[index] as StoredRequest));
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
    this.#lastSeq += rows.length;
    this.#currentRows += rows.length;
  }

  async query(filter: RequestLogFilter): Promise<string[]> {
    const conditions = ["seq > ?"];
    const values: (string | number)[] = [this.#oldestHiddenSeq()];
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
    const rows = this.#db
      .prepare(
        `SELECT record FROM (${BOTH}) WHERE ${conditions.join(" AND ")} ORDER BY started_at_ms DESC, seq DESC LIMIT ?`,
      )
      .all(...values, filter.limit);
    return rows.map((row) => String(row.record));
  }

  async get(id: string): Promise<string | undefined> {
    // Newest first: a client may reuse its `x-request-id`; the latest request with it is the one asked about.
    const row = this.#db
      .prepare(`SELECT record FROM (${BOTH}) WHERE id = ? AND seq > ? ORDER BY seq DESC LIMIT 1`)
      .get(id, this.#oldestHiddenSeq());
    return row === undefined ? undefined : String(row.record);
  }

  async prune(maxEntries: number, oldestStartedAtMs: number): Promise<void> {
    this.#maxEntries = maxEntries;
    for (const table of TABLES) {
      const { changes } = this.#statements[table].pruneByAge.run(oldestStartedAtMs);
      if (table === this.#current) this.#currentRows -= Number(changes);
    }
    if (this.#currentRows < maxEntries) return;
    // The current table alone holds max_entries rows: every row of the other one is beyond them.
    const other = this.#current === TABLES[0] ? TABLES[1] : TABLES[0];
    this.#db.exec(`DELETE FROM ${other}`);
    this.#current = other;
    this.#currentRows = 0;
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }

  #prepare(table: Table): TableStatements {
    const insert = `INSERT INTO ${table} (${COLUMNS}) VALUES`;
    return {
      insert: this.#db.prepare(`${insert} ${ROW_VALUES}`),
      insertGroup: this.#db.prepare(`${insert} ${Array(ROWS_PER_STATEMENT).fill(ROW_VALUES).join(", ")}`),
      pruneByAge: this.#db.prepare(`DELETE FROM ${table} WHERE started_at_ms < ?`),
      count: this.#db.prepare(`SELECT count(*) AS rows FROM ${table}`),
    };
  }

  #rowsOf(table: Table): number {
    return Number(this.#statements[table].count.get()?.rows ?? 0);
  }

  #oldestHiddenSeq(): number {
    return Number.isFinite(this.#maxEntries) ? this.#lastSeq - this.#maxEntries : 0;
  }

  /** The one-table log of the previous version: its rows move to the first table (in their order), once. */
  #migrateOneTable(): void {
    const old = this.#db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'request_records'")
      .get();
    if (old === undefined) return;
    this.#db.exec(`
      BEGIN;
      INSERT INTO request_records_a (${COLUMNS})
        SELECT rowid, id, started_at_ms, models, providers, status, record FROM request_records ORDER BY rowid;
      DROP TABLE request_records;
      COMMIT;
    `);
  }
}

function rowValues(seq: number, row: StoredRequest): (string | number)[] {
  return [seq, row.id, row.startedAtMs, delimited(row.models), delimited(row.providers), row.status, row.json];
}

function delimited(names: readonly string[]): string {
  return `${SEPARATOR}${names.join(SEPARATOR)}${SEPARATOR}`;
}
