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
  const books = new BatchBooks(new MemoryBatchRows(), clock, () => settings());
  await books.addFile(fileAt("file-a", clock), Buffer.from("a"));
  clock.advance(1_000);
  await books.addFile(fileAt("file-b", clock, "team"), Buffer.from("b"));
  assert.equal(await books.file("file-b", null), undefined);
  assert.equal((await books.file("file-b", "team"))?.id, "file-b");
  assert.equal(await books.fileContent("file-a", "team"), undefined);
  // file-a is the input of a running batch: kept when the bound is passed.
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
  const books = new BatchBooks(new MemoryBatchRows(), clock, () => settings());
  const at = (id: string) =>
    newBatch(id, "file-a", "/v1/chat/completions", null, Math.floor(clock.now() / 1000), 86_400);
  assert.ok(await books.addBatch({ owner: "", batch: { ...at("batch_1"), status: "completed" } }));
  assert.ok(await books.addBatch({ owner: "", batch: at("batch_2") }));
  assert.ok(await books.addBatch({ owner: "", batch: at("batch_3") }));
  assert.equal(await books.batch("batch_1"), undefined);
  assert.equal(await books.addBatch({ owner: "", batch: at("batch_4") }), false);
  assert.equal(await books.batch("batch_2", "other"), undefined, "another client's batch is not found");
});
