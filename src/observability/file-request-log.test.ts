// The embedded request log's files: what survives a restart or a crash, retention by segment, lines that a
// hostile name cannot split, lines longer than a read chunk. (The behaviour shared with the other backends is
// tested for all of them in request-log.test.ts.)
import assert from "node:assert/strict";
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { record } from "../../test/helpers/records.ts";
import { FileRequestLogBackend } from "./file-request-log.ts";
import { RequestLog, type StoredRequest } from "./request-log.ts";

function statePath(t: import("node:test").TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "file-request-log-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "state.db");
}

function row(id: string, startedAtMs: number, extra: Partial<StoredRequest> = {}): StoredRequest {
  return {
    id,
    startedAtMs,
    models: ["m"],
    providers: ["p"],
    status: 200,
    json: JSON.stringify({ id, startedAtMs }),
    ...extra,
  };
}

const ids = (texts: string[]) => texts.map((text) => (JSON.parse(text) as { id: string }).id);

test("rows survive a restart, and a torn line left by a crash is skipped, not glued to the next one", async (t) => {
  const path = statePath(t);
  const first = new FileRequestLogBackend(path);
  await first.append([row("a", 1), row("b", 2)]);
  await first.close();
  appendFileSync(`${path}.requests`, '3\t200\ttorn\tm\tp\t{"id":"torn"'); // the write a crash cut short

  const second = new FileRequestLogBackend(path);
  t.after(() => second.close());
  assert.deepEqual(ids(await second.query({ limit: 10 })), ["b", "a"]);
  await second.append([row("c", 4)]);
  assert.deepEqual(ids(await second.query({ limit: 10 })), ["c", "b", "a"]);
  assert.equal(await second.get("torn"), undefined);
  assert.equal(JSON.parse((await second.get("c")) ?? "{}").id, "c");
});

test("retention by count rotates whole segments: the newest max_entries stay visible, at most two segments", async (t) => {
  const path = statePath(t);
  const log = new FileRequestLogBackend(path);
  t.after(() => log.close());
  for (let batch = 0; batch < 4; batch++) {
    await log.append([0, 1, 2].map((index) => row(`r${batch * 3 + index}`, batch * 3 + index)));
    await log.prune(4, 0);
  }
  assert.deepEqual(ids(await log.query({ limit: 10 })), ["r11", "r10", "r9", "r8"]);
  const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").length - 1 : 0);
  // Rotated at 6 lines (>= 4): the previous segment holds r6..r11, the current one nothing yet.
  assert.equal(lines(`${path}.requests.1`), 6);
  assert.equal(lines(`${path}.requests`), 0);
  assert.equal(await log.get("r5"), undefined, "r0..r5 were in the deleted segment");
});

test("retention by age drops a segment last written before the oldest kept start", async (t) => {
  const path = statePath(t);
  const log = new FileRequestLogBackend(path);
  t.after(() => log.close());
  await log.append([row("old", 1)]);
  await log.prune(1, 0); // rotates: "old" is in the previous segment
  await log.append([row("new", 2)]);
  const hourAgo = new Date(Date.now() - 3_600_000);
  utimesSync(`${path}.requests.1`, hourAgo, hourAgo);
  await log.prune(10, Date.now() - 60_000);
  assert.equal(existsSync(`${path}.requests.1`), false);
  assert.deepEqual(ids(await log.query({ limit: 10 })), ["new"]);
});

test("tabs and newlines in ids and names cannot split a line; filters still match the name", async (t) => {
  const log = new FileRequestLogBackend(statePath(t));
  t.after(() => log.close());
  await log.append([
    row("x\ty\nz", 1, { models: ["evil\tmodel\nname"], providers: ["pro\x1fvider"] }),
    row("plain", 2),
  ]);
  assert.deepEqual(ids(await log.query({ limit: 10 })), ["plain", "x\ty\nz"]);
  assert.deepEqual(ids(await log.query({ limit: 10, model: "evil\tmodel\nname" })), ["x\ty\nz"]);
  assert.deepEqual(ids(await log.query({ limit: 10, provider: "pro\x1fvider" })), ["x\ty\nz"]);
  assert.equal(JSON.parse((await log.get("x\ty\nz")) ?? "{}").id, "x\ty\nz");
});

test("lines longer than a read chunk (a record with its content kept) come back whole", async (t) => {
  const log = new FileRequestLogBackend(statePath(t));
  t.after(() => log.close());
  const big = "é".repeat(400_000); // 800 KB of UTF-8: crosses several 256 KB chunks, and multi-byte boundaries
  await log.append([row("small1", 1), { ...row("big", 2), json: JSON.stringify({ id: "big", big }) }]);
  await log.append([row("small2", 3)]);
  assert.deepEqual(ids(await log.query({ limit: 10 })), ["small2", "big", "small1"]);
  assert.equal((JSON.parse((await log.get("big")) ?? "{}") as { big: string }).big, big);
});

test("the request_records table of earlier versions is dropped from the state file on the first write", async (t) => {
  const path = statePath(t);
  const db = new DatabaseSync(path);
  db.exec("CREATE TABLE request_records (id TEXT, record TEXT); INSERT INTO request_records VALUES ('a', '{}');");
  db.close();
  const log = new FileRequestLogBackend(path);
  t.after(() => log.close());
  await log.append([row("a", 1)]);
  const check = new DatabaseSync(path);
  t.after(() => check.close());
  assert.equal(check.prepare("SELECT name FROM sqlite_master WHERE name = 'request_records'").get(), undefined);
});

test("a state file locked by another process: the first write does not wait for it; the table goes at a later write", async (t) => {
  const path = statePath(t);
  const other = new DatabaseSync(path);
  t.after(() => other.close());
  other.exec("PRAGMA journal_mode = WAL; CREATE TABLE request_records (id TEXT, record TEXT)");
  other.exec("PRAGMA busy_timeout = 0; BEGIN IMMEDIATE");
  const log = new FileRequestLogBackend(path);
  t.after(() => log.close());
  // SQLite's busy timeout (2 s) held the event loop here, every request of the gateway with it.
  const startedMs = performance.now();
  await log.append([row("a", 1)]);
  const elapsedMs = performance.now() - startedMs;
  // Half the busy timeout a waiting append takes whole: room for a loaded machine (SQLite's wait sleeps the thread, so
  // this thread's CPU time could not tell it apart; the clock can, with that margin).
  assert.ok(elapsedMs < 1_000, `the append waited ${Math.round(elapsedMs)} ms for the lock`);
  assert.deepEqual(ids(await log.query({ limit: 10 })), ["a"], "the line is written all the same");
  other.exec("ROLLBACK");
  await log.append([row("b", 2)]);
  assert.equal(other.prepare("SELECT name FROM sqlite_master WHERE name = 'request_records'").get(), undefined);
});

test("a line damaged outside the gateway is left out of answers; the other requests are still found", async (t) => {
  const path = statePath(t);
  const clock = { now: () => 10_000 };
  const backend = new FileRequestLogBackend(path);
  const log = new RequestLog(backend, { clock, maxEntries: 100, maxAgeMs: 60_000, isContentKept: false });
  t.after(() => log.close());
  log.observe(record({ id: "before", startedAtMs: 1_000 }));
  await log.flush();
  appendFileSync(`${path}.requests`, '2000\t200\tbroken\tm\tp\t{"id":"broken", "cut here\n');
  log.observe(record({ id: "after", startedAtMs: 3_000 }));
  assert.deepEqual(
    (await log.query({ limit: 10 })).map((found) => found.id),
    ["after", "before"],
  );
  assert.equal(await log.get("broken"), undefined);
  assert.equal((await log.get("after"))?.id, "after");
});

test("a request that finished after later ones is found by its start across segments and a restart", async (t) => {
  const path = statePath(t);
  const first = new FileRequestLogBackend(path);
  await first.append([row("quick2", 2_000), row("quick3", 3_000), row("quick4", 4_000)]);
  await first.prune(3, 0); // rotates: the quick requests are in the previous segment
  await first.append([row("long1", 1_000)]); // started first, finished last
  assert.deepEqual(ids(await first.query({ limit: 1 })), ["quick4"]);
  assert.deepEqual(ids(await first.query({ limit: 2 })), ["quick4", "quick3"]);
  await first.close();
  // After a restart (here with a clock set back), the latest start so far carries over in the files: lines
  // written now do not stop a query before it reaches the lines that started later.
  const second = new FileRequestLogBackend(path);
  t.after(() => second.close());
  await second.append([row("back1", 500), row("back2", 600)]);
  assert.deepEqual(ids(await second.query({ limit: 1 })), ["quick4"]);
  assert.deepEqual(ids(await second.query({ limit: 10 })), ["quick4", "quick3", "quick2", "long1", "back2", "back1"]);
});

test("lines of earlier versions (no latest-start field) are read past and still answered by start", async (t) => {
  const path = statePath(t);
  const earlier = (id: string, startedAtMs: number) =>
    `${startedAtMs}\t200\t${id}\tm\tp\t${JSON.stringify({ id, startedAtMs })}\n`;
  // Written by an earlier version, in finish order: a stream that started first finished last.
  appendFileSync(`${path}.requests`, earlier("old2", 2_000) + earlier("old3", 3_000) + earlier("old1", 1_000));
  const log = new FileRequestLogBackend(path);
  t.after(() => log.close());
  assert.deepEqual(ids(await log.query({ limit: 2 })), ["old3", "old2"]);
  await log.append([row("new5", 5_000), row("new4", 4_000)]);
  assert.deepEqual(ids(await log.query({ limit: 3 })), ["new5", "new4", "old3"]);
  assert.deepEqual(ids(await log.query({ limit: 10, provider: "p" })), ["new5", "new4", "old3", "old2", "old1"]);
  assert.equal(JSON.parse((await log.get("old1")) ?? "{}").id, "old1");
});

test("a query stops where a line's latest start says nothing further back can be among the newest", async (t) => {
  const path = statePath(t);
  const line = (id: string, startedAtMs: number, latestStartMs: number) =>
    `${startedAtMs}\t200\t${id}\tm\tp\t${latestStartMs}\t${JSON.stringify({ id, startedAtMs })}\n`;
  // A file no gateway would write ("hidden" started after the mark of the lines behind it): it shows that the
  // lines before the stopping point are not read at all.
  appendFileSync(`${path}.requests`, line("hidden", 9_000, 9_000) + line("a", 1_000, 2_000) + line("b", 2_000, 2_000));
  const log = new FileRequestLogBackend(path);
  t.after(() => log.close());
  assert.deepEqual(ids(await log.query({ limit: 1 })), ["b"]);
  assert.deepEqual(ids(await log.query({ limit: 3 })), ["hidden", "b", "a"], "not full: read to the start");
  assert.deepEqual(ids(await log.query({ limit: 10, sinceMs: 2_500 })), [], "every line from b back started before");
});

test("a write the disk refuses fails the batch; the next batch opens the segment again and is stored", async (t) => {
  const path = statePath(t);
  const first = new FileRequestLogBackend(path);
  await first.append([row("kept", 1)]);
  await first.close();
  // The segment on a full disk: /dev/full refuses every write with ENOSPC.
  renameSync(`${path}.requests`, `${path}.saved`);
  symlinkSync("/dev/full", `${path}.requests`);
  const log = new FileRequestLogBackend(path);
  t.after(() => log.close());
  await assert.rejects(() => log.append([row("refused", 2)]), /ENOSPC/);
  // The disk has room again: the same backend must not keep writing to what it had open.
  unlinkSync(`${path}.requests`);
  renameSync(`${path}.saved`, `${path}.requests`);
  await log.append([row("next", 3)]);
  assert.deepEqual(ids(await log.query({ limit: 10 })), ["next", "kept"]);
});
