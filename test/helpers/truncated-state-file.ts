// A state file from an earlier run, cut short (a copy stopped halfway, a crash on a disk that lied): malformed.

import { truncateSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";

/**
 * Writes 2,000 budget rows at `path` and cuts the file to 300,000 bytes. In one transaction: autocommitted, each
 * INSERT was an fsync of its own, 27 s of set-up on a busy disk.
 */
export function writeTruncatedStateFile(path: string): void {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA page_size = 4096");
  db.exec(
    "CREATE TABLE budget_scopes (scope_id TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at_ms INTEGER NOT NULL)",
  );
  const insert = db.prepare("INSERT INTO budget_scopes VALUES (?, ?, 0)");
  db.exec("BEGIN");
  for (let index = 0; index < 2_000; index++) insert.run(`deployment:p${index}/m`, "x".repeat(200));
  db.exec("COMMIT");
  db.close();
  truncateSync(path, 300_000);
}
