import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../clock.ts";
import type { BatchSettings } from "../config/types.ts";
import { newBatch, type StoredFile } from "../protocols/batches/batch-objects.ts";
import { MemoryBatchRows } from "../state/batch-rows.ts";
import { BatchBooks } from "./batch-books.ts";

const DAY_MS = 24 * 3_600_000;

function settings(overrides: Partial<BatchSettings> = {}): BatchSettings {
  return {
    concurrency: 2,
    maxFileBytes: 1_000,
    maxLines: 10,
    maxFiles: 3,
    maxBatches: 2,
    retentionMs: 30 * DAY_MS,
    completionWindowMs: DAY_MS,
    leaseMs: 30_000,
    ...overrides,
  };
}

function fileAt(id: string, clock: ManualClock, owner = "", retentionMs = 30 * DAY_MS): StoredFile {
  const createdAt = Math.floor(clock.now() / 1000);
  return {
    id,
    owner,
    bytes: 1,
    createdAt,
    expiresAt: createdAt + retentionMs / 1000,
    filename: "x.jsonl",
    purpose: "batch",
  };
}

test("files: each owner sees its own; past max_files the oldest goes, never a running batch's input", async () => {
  const clock = new ManualClock();
  const books = new BatchBooks(new MemoryBatchRows(), clock, () => settings({ maxFiles: 5 }));
  assert.equal(await books.addFile(fileAt("file-a", clock), Buffer.from("a")), true);
  clock.advance(1_000);
  await books.addFile(fileAt("file-b", clock, "team"), Buffer.from("b"));
  assert.equal(await books.file("file-b", null), undefined);
  assert.equal((await books.file("file-b", "team"))?.id, "file-b");
  assert.equal(await books.fileContent("file-a", "team"), undefined);
  // file-a is the input of a running batch: kept when the bound is passed. The batch holds room for its 2 result files.
  await books.addBatch({ owner: "", batch: newBatch("batch_1", "file-a", "/v1/chat/completions", null, 0, 86_400) });
  clock.advance(1_000);
  await books.addFile(fileAt("file-c", clock), Buffer.from("c"));
  clock.advance(1_000);
  await books.addFile(fileAt("file-d", clock), Buffer.from("d"));
  assert.ok((await books.file("file-a", null)) !== undefined, "a running batch's input stays");
  assert.equal(await books.file("file-b", "team"), undefined, "the oldest other file went");
  assert.deepEqual(
    (await books.files(null)).map((file) => file.id),
    ["file-a", "file-c", "file-d"],
  );
});

test("max_files holds when every file is a running batch's input: uploads and creates refused, ends fit", async () => {
  const clock = new ManualClock();
  const books = new BatchBooks(new MemoryBatchRows(), clock, () => settings({ maxFiles: 4, maxBatches: 10 }));
  const at = (id: string, input: string) =>
    newBatch(id, input, "/v1/chat/completions", null, Math.floor(clock.now() / 1000), 86_400);
  assert.equal(await books.addFile(fileAt("file-a", clock), Buffer.from("a")), true);
  assert.equal(await books.addBatch({ owner: "", batch: at("batch_1", "file-a") }), "added");
  clock.advance(1_000);
  assert.equal(await books.addFile(fileAt("file-b", clock), Buffer.from("b")), true);
  // A second batch on file-b would need 2 files + 2 x 2 reserved: no room, and its own input is not evicted for it.
  assert.equal(await books.addBatch({ owner: "", batch: at("batch_2", "file-b") }), "files");
  assert.ok((await books.file("file-b", null)) !== undefined);
  assert.equal(await books.batch("batch_2"), undefined);
  // An upload past the bound evicts file-b (no batch reads it); with nothing evictable it is refused.
  clock.advance(1_000);
  assert.equal(await books.addFile(fileAt("file-c", clock), Buffer.from("c")), true);
  assert.equal(await books.file("file-b", null), undefined);
  assert.equal(await books.addBatch({ owner: "", batch: at("batch_3", "file-c") }), "files");
  // batch_1's end writes its two files into the room it held: the bound holds.
  await books.addOutputFile({ ...fileAt("file-out", clock), purpose: "batch_output" }, [Buffer.from("o")], 1);
  await books.addOutputFile({ ...fileAt("file-err", clock), purpose: "batch_output" }, [Buffer.from("e")], 0);
  assert.ok((await books.files(null)).length <= 4, `${(await books.files(null)).map((file) => file.id)}`);
  assert.ok((await books.file("file-a", null)) !== undefined, "the running batch's input stays");
});

test("retention: expired files are not found and are removed; finished batches go after retention_ms", async () => {
  const clock = new ManualClock();
  const books = new BatchBooks(new MemoryBatchRows(), clock, () => settings({ retentionMs: DAY_MS }));
  await books.addFile(fileAt("file-a", clock, "", DAY_MS), Buffer.from("a"));
  const batch = newBatch("batch_1", "file-a", "/v1/chat/completions", null, Math.floor(clock.now() / 1000), 86_400);
  await books.addBatch({ owner: "", batch: { ...batch, status: "completed" } });
  clock.advance(DAY_MS + 1);
  assert.equal(await books.file("file-a", null), undefined);
  await books.prune();
  assert.equal(await books.batch("batch_1"), undefined);
  assert.deepEqual(await books.files(null), []);
});

test("max_batches: the oldest finished batch makes room; with every kept batch running a new one is refused", async () => {
  const clock = new ManualClock();
  const books = new BatchBooks(new MemoryBatchRows(), clock, () => settings({ maxFiles: 100 }));
  const at = (id: string) =>
    newBatch(id, "file-a", "/v1/chat/completions", null, Math.floor(clock.now() / 1000), 86_400);
  assert.equal(await books.addBatch({ owner: "", batch: { ...at("batch_1"), status: "completed" } }), "added");
  assert.equal(await books.addBatch({ owner: "", batch: at("batch_2") }), "added");
  assert.equal(await books.addBatch({ owner: "", batch: at("batch_3") }), "added");
  assert.equal(await books.batch("batch_1"), undefined);
  assert.equal(await books.addBatch({ owner: "", batch: at("batch_4") }), "batches");
  assert.equal(await books.batch("batch_2", "other"), undefined, "another client's batch is not found");
});

/** Rows whose writes of new files or batches fail (a state file locked past its wait, a full disk), deletes work. */
class RefusingWrites extends MemoryBatchRows {
  isRefusing = false;

  override async putFile(...args: Parameters<MemoryBatchRows["putFile"]>): Promise<void> {
    if (this.isRefusing) throw new Error("database is locked");
    return super.putFile(...args);
  }

  override async putBatch(...args: Parameters<MemoryBatchRows["putBatch"]>): Promise<void> {
    if (this.isRefusing) throw new Error("database is locked");
    return super.putBatch(...args);
  }
}

test("an upload or a batch create whose write fails deletes none of the files (nor batches) it would have pushed out", async () => {
  const clock = new ManualClock();
  const rows = new RefusingWrites();
  const books = new BatchBooks(rows, clock, () => settings({ maxFiles: 3, maxBatches: 1 }));
  await books.addFile(fileAt("file-a", clock), Buffer.from("a"));
  clock.advance(1_000);
  await books.addFile(fileAt("file-b", clock), Buffer.from("b"));
  clock.advance(1_000);
  await books.addFile(fileAt("file-c", clock), Buffer.from("c"));
  const nowSeconds = Math.floor(clock.now() / 1000);
  const finished = newBatch("batch_old", "file-c", "/v1/chat/completions", null, nowSeconds, 86_400);
  await books.putBatch({ owner: "", batch: { ...finished, status: "completed" } }); // no room taken: it has ended

  rows.isRefusing = true;
  await assert.rejects(books.addFile(fileAt("file-d", clock), Buffer.from("d")), /locked/);
  await assert.rejects(
    books.addBatch({
      owner: "",
      batch: newBatch("batch_new", "file-b", "/v1/chat/completions", null, nowSeconds, 86_400),
    }),
    /locked/,
  );
  assert.deepEqual(
    (await books.files(null)).map((file) => file.id),
    ["file-a", "file-b", "file-c"],
    "a failed write cost the oldest files",
  );
  assert.deepEqual(
    (await books.batches()).map((stored) => stored.batch.id),
    ["batch_old"],
  );

  // Once writes work, the same upload makes its room as before.
  rows.isRefusing = false;
  assert.equal(await books.addFile(fileAt("file-d", clock), Buffer.from("d")), true);
  assert.deepEqual(
    (await books.files(null)).map((file) => file.id),
    ["file-b", "file-c", "file-d"],
  );
});
