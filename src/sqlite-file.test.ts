import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { type TestContext, test } from "node:test";
import { isBusyError, openSqliteFile, whenUnlocked } from "./sqlite-file.ts";

function tempPath(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "sqlite-file-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "nested", "state.db");
}

const pragma = (db: DatabaseSync, name: string): unknown => Object.values(db.prepare(`PRAGMA ${name}`).get() ?? {})[0];

test("a new file: its folder is created, 4 KiB pages, WAL; every part opening it later sees the same", (t) => {
  const path = tempPath(t);
  const first = openSqliteFile(path);
  first.exec("CREATE TABLE a (x)");
  const second = openSqliteFile(path);
  second.exec("CREATE TABLE b (x)");
  for (const db of [first, second]) {
    assert.equal(pragma(db, "page_size"), 4_096);
    assert.equal(pragma(db, "journal_mode"), "wal");
    assert.equal(pragma(db, "busy_timeout"), 2_000);
    db.close();
  }
});

test("a file of an earlier version keeps its 16 KiB pages and its rows", (t) => {
  const path = tempPath(t);
  openSqliteFile(path).close(); // creates the folder
  rmSync(path, { force: true });
  rmSync(`${path}-wal`, { force: true });
  rmSync(`${path}-shm`, { force: true });
  const old = new DatabaseSync(path);
  old.exec("PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; CREATE TABLE kept (x); INSERT INTO kept VALUES (1);");
  old.close();
  const db = openSqliteFile(path);
  t.after(() => db.close());
  assert.equal(pragma(db, "page_size"), 16_384);
  assert.equal(pragma(db, "journal_mode"), "wal");
  assert.equal(db.prepare("SELECT x FROM kept").get()?.x, 1);
});

test("a new file, its -wal and -shm and the folders made for it are the owner's alone (they hold prompts)", (t) => {
  const path = tempPath(t);
  const before = process.umask(0o022); // the usual default: 0644 files, 0755 folders
  t.after(() => process.umask(before));
  const db = openSqliteFile(path);
  db.exec("CREATE TABLE kept (x); INSERT INTO kept VALUES ('a prompt');");
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    assert.equal((statSync(file).mode & 0o777).toString(8), "600", file);
  }
  assert.equal((statSync(join(path, "..")).mode & 0o777).toString(8), "700");
  db.close();
});

test("an existing file keeps the mode its owner gave it", (t) => {
  const path = tempPath(t);
  openSqliteFile(path).close();
  chmodSync(path, 0o640);
  openSqliteFile(path).close();
  assert.equal((statSync(path).mode & 0o777).toString(8), "640");
});

test("whenUnlocked: a write refused the lock is tried again by a timer, the event loop serving between tries", async (t) => {
  const path = tempPath(t);
  const db = openSqliteFile(path);
  const other = new DatabaseSync(path);
  t.after(() => {
    other.close();
    db.close();
  });
  db.exec("CREATE TABLE a (x); PRAGMA busy_timeout = 0");
  other.exec("PRAGMA busy_timeout = 0; BEGIN IMMEDIATE");
  // Freed by a timer: only tries that leave the event loop free let it run.
  setTimeout(() => other.exec("ROLLBACK"), 60);
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 5);
  let tries = 0;
  const startedMs = performance.now();
  await whenUnlocked(() => {
    tries++;
    db.exec("INSERT INTO a VALUES (1)");
  }, 5_000);
  clearInterval(ticker);
  const elapsedMs = performance.now() - startedMs;
  // Not tried again until the bound (5 s), it would be written only then: half of it leaves a loaded machine room.
  assert.ok(elapsedMs >= 55 && elapsedMs < 2_500, `written ${Math.round(elapsedMs)} ms after the first try`);
  // The loop served between tries: the ticker ran, and the lock was freed by a timer at all. Not a count of ticks:
  // a CI machine under load gave the 5 ms ticker 2 turns in ~90 ms.
  assert.ok(tries > 1 && ticks >= 1, `${tries} tries, ${ticks} 5 ms ticks meanwhile`);
  assert.equal(pragma(db, "busy_timeout"), 0);
  assert.equal(db.prepare("SELECT COUNT(*) AS count FROM a").get()?.count, 1);

  // Held past the bound: the busy error, after about the bound; another error at once, not tried again.
  other.exec("BEGIN IMMEDIATE");
  const heldMs = performance.now();
  await assert.rejects(
    whenUnlocked(() => db.exec("INSERT INTO a VALUES (2)"), 150),
    (error: unknown) => isBusyError(error),
  );
  const gaveUpMs = performance.now() - heldMs;
  assert.ok(gaveUpMs >= 140 && gaveUpMs < 5_000, `gave up after ${Math.round(gaveUpMs)} ms`);
  other.exec("ROLLBACK");
  let otherTries = 0;
  await assert.rejects(
    whenUnlocked(() => {
      otherTries++;
      db.exec("INSERT INTO missing VALUES (1)");
    }, 1_000),
    /no such table/,
  );
  assert.equal(otherTries, 1);
});
