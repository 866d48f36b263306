// The batch rows in a real Redis (test/helpers/redis-server.ts): what two replicas sharing them rely on. A line's
// result is kept once whoever writes it; a batch's compare-and-set refuses a stale writer; a lease is one replica's
// until it lapses or is dropped; the count bounds hold with two books adding at once (the lock); a file's bytes come
// back whole across chunks.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { systemClock } from "../clock.ts";
import type { BatchSettings } from "../config/types.ts";
import { BatchBooks } from "../pipeline/batch-books.ts";
import type { StoredFile } from "../protocols/batches/batch-objects.ts";
import type { ResultRow } from "./batch-rows.ts";
import { RedisBatchRows } from "./redis-batch-rows.ts";

const skip = { skip: isRedisInstalled() ? false : REDIS_MISSING };

async function rowsOn(url: string, t: { after: (fn: () => Promise<void>) => void }): Promise<RedisBatchRows> {
  const rows = new RedisBatchRows(url, "rows-test:", false, (json) => !json.includes('"done"'));
  await rows.connect();
  t.after(() => rows.close());
  return rows;
}

const row = (id: string, json: string) => ({ id, owner: "", createdAtMs: 0, json });

/** Every page of `resultPages`, each page's lines apart: which line is on which page. */
async function pagesOf(rows: RedisBatchRows, batchId: string, pageBytes: number): Promise<string[][]> {
  const pages: string[][] = [];
  for await (const page of rows.resultPages(batchId, pageBytes)) pages.push(page.map((result) => result.line));
  return pages;
}

test("a line's result is kept once; results come back in line order", skip, async (t) => {
  const redis = await useRedisServer(t);
  const [a, b] = [await rowsOn(redis.url, t), await rowsOn(redis.url, t)];
  assert.equal(await a.putResult("batch_1", { index: 2, isError: false, line: "two" }), true);
  assert.equal(await b.putResult("batch_1", { index: 2, isError: true, line: "two again" }), false);
  // The same result again (its first write landed, its answer was lost): it is the one kept, added once.
  assert.equal(await b.putResult("batch_1", { index: 2, isError: false, line: "two" }), true);
  assert.equal(await b.putResult("batch_1", { index: 0, isError: false, line: "zero" }), true);
  assert.deepEqual(await pagesOf(a, "batch_1", 1024), [["zero", "two"]]);
});

test("pages are in line order across pages, whatever order the lines finished in", skip, async (t) => {
  const redis = await useRedisServer(t);
  const rows = await rowsOn(redis.url, t);
  // 100 lines finished in a shuffled order (7 is prime to 100: each index once). The old list kept this order, and
  // each page was sorted alone: line 0 came in page 3.
  const indexes = Array.from({ length: 100 }, (_, step) => (step * 7 + 3) % 100);
  for (const index of indexes) {
    assert.equal(await rows.putResult("batch_1", { index, isError: index % 10 === 0, line: `line ${index}` }), true);
  }
  // 32 lines a first page (PageSize.FIRST_LINES), then about 60 bytes a page of ~8-byte lines: several pages.
  const pages = await pagesOf(rows, "batch_1", 60);
  assert.ok(pages.length > 3, `${pages.length} pages`);
  assert.deepEqual(
    pages.flat(),
    Array.from({ length: 100 }, (_, index) => `line ${index}`),
  );
});

test(
  "a batch's results an earlier version kept as a list (finish order) are read and added to in line order",
  skip,
  async (t) => {
    const redis = await useRedisServer(t);
    const admin = new Redis(redis.url);
    // disconnect, not quit: the Redis server's cleanup, registered first, has stopped it by then, and a QUIT queued
    // behind a command waits through ioredis's reconnections for ever (the file never exits).
    t.after(() => admin.disconnect());
    const results: ResultRow[] = [
      { index: 3, isError: false, line: "three" },
      { index: 0, isError: true, line: "zero" },
      { index: 2, isError: false, line: "two" },
    ];
    await admin.rpush("rows-test:{batches}:results:batch_old", ...results.map((result) => JSON.stringify(result)));
    await admin.hset("rows-test:{batches}:done:batch_old", "3", "1", "0", "1", "2", "1");
    const rows = await rowsOn(redis.url, t);
    // A put first (a batch resumed after the upgrade): the list becomes the sorted set, its lines kept.
    assert.equal(await rows.putResult("batch_old", { index: 1, isError: false, line: "one" }), true);
    assert.equal(await rows.putResult("batch_old", { index: 3, isError: false, line: "three again" }), false);
    assert.deepEqual(await pagesOf(rows, "batch_old", 1024), [["zero", "one", "two", "three"]]);
    // A read first (a batch whose every line was written before the upgrade).
    await admin.rpush("rows-test:{batches}:results:batch_read", ...results.map((result) => JSON.stringify(result)));
    assert.deepEqual(await pagesOf(rows, "batch_read", 1024), [["zero", "two", "three"]]);
    assert.equal(await admin.type("rows-test:{batches}:results:batch_read"), "zset");
    assert.equal(await rows.deleteBatch("batch_read"), false, "no batch row; its results go all the same");
    assert.equal(await admin.exists("rows-test:{batches}:results:batch_read"), 0);
  },
);

test(
  "an earlier version's long results list becomes the sorted set a few hundred lines per script, none lost",
  skip,
  async (t) => {
    const redis = await useRedisServer(t);
    const admin = new Redis(redis.url);
    t.after(() => admin.disconnect());
    // MONITOR on a raw connection shows the commands scripts run ("[0 lua]"): each conversion's LRANGE and its range.
    const { port, hostname } = new URL(redis.url);
    const monitor = connect(Number(port), hostname);
    t.after(() => monitor.destroy());
    let seen = "";
    monitor.setEncoding("utf8").on("data", (text: string) => {
      seen += text;
    });
    monitor.write("MONITOR\r\n");
    for (let waitedMs = 0; !seen.includes("+OK") && waitedMs < 5_000; waitedMs += 20) await sleep(20);
    // 1,200 lines finished in a shuffled order (7 is prime to 1,200: each index once), as an earlier version kept them.
    const lines = 1_200;
    const order = Array.from({ length: lines }, (_, step) => (step * 7 + 5) % lines);
    const listed = order.map((index) => JSON.stringify({ index, isError: false, line: `line ${index}` }));
    for (const [key, done] of [
      ["rows-test:{batches}:results:batch_read", "rows-test:{batches}:done:batch_read"],
      ["rows-test:{batches}:results:batch_put", "rows-test:{batches}:done:batch_put"],
    ] as const) {
      for (let from = 0; from < lines; from += 300) await admin.rpush(key, ...listed.slice(from, from + 300));
      await admin.hset(done, Object.fromEntries(order.map((index) => [String(index), "1"])));
    }
    const [a, b] = [await rowsOn(redis.url, t), await rowsOn(redis.url, t)];
    // Two replicas read it at once (a batch's end and a takeover's resume): each converts, neither loses a line.
    const [pagesA, pagesB] = await Promise.all([pagesOf(a, "batch_read", 1 << 20), pagesOf(b, "batch_read", 1 << 20)]);
    const inOrder = Array.from({ length: lines }, (_, index) => `line ${index}`);
    assert.deepEqual(pagesA.flat(), inOrder);
    assert.deepEqual(pagesB.flat(), inOrder);
    // A put first: the list is converted, then the new line added; a line already listed keeps its result.
    assert.equal(await a.putResult("batch_put", { index: lines, isError: false, line: `line ${lines}` }), true);
    assert.equal(await b.putResult("batch_put", { index: 7, isError: true, line: "seven again" }), false);
    assert.deepEqual((await pagesOf(b, "batch_put", 1 << 20)).flat(), [...inOrder, `line ${lines}`]);
    assert.equal(await admin.type("rows-test:{batches}:results:batch_put"), "zset");
    assert.equal(await admin.exists("rows-test:{batches}:results-converting:batch_put"), 0);
    // Every LRANGE a script ran on a results list read 500 lines at most: the old script read the whole list
    // (LRANGE 0 -1) in one run, blocking Redis for as long as a 50,000-line batch's answers took to decode.
    await admin.echo("monitor-mark");
    for (let waitedMs = 0; !seen.includes("monitor-mark") && waitedMs < 5_000; waitedMs += 20) await sleep(20);
    const ranges = [...seen.matchAll(/\[0 lua\] "(?:lrange|LRANGE)" "[^"]*results:[^"]*" "(-?\d+)" "(-?\d+)"/g)];
    assert.ok(ranges.length >= 6, `${ranges.length} LRANGEs by scripts (3 runs per list of 1,200 at least)`);
    for (const [, from, to] of ranges) {
      assert.ok(Number(to) >= 0 && Number(to) - Number(from) < 500, `LRANGE ${from} ${to}`);
    }
  },
);

/** An earlier version's PUT_RESULT_LUA (before 82efad9): the line's mark, then the line appended to a list. */
const EARLIER_PUT_RESULT_LUA = `
if redis.call('HSETNX', KEYS[2], ARGV[1], '1') == 0 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[2])
return 1
`;

test(
  "a rolling upgrade: an earlier version's write to a converted results key fails (WRONGTYPE); the line is written again",
  skip,
  async (t) => {
    const redis = await useRedisServer(t);
    const admin = new Redis(redis.url);
    t.after(() => admin.disconnect());
    const rows = await rowsOn(redis.url, t);
    const [results, done] = ["rows-test:{batches}:results:batch_mixed", "rows-test:{batches}:done:batch_mixed"];
    // This version wrote line 0: the results key is the sorted set.
    assert.equal(await rows.putResult("batch_mixed", { index: 0, isError: false, line: "zero" }), true);
    // A replica of the version before writes line 1 (it ran the batch, its lease not lapsed): its RPUSH is refused,
    // after its script set the line's mark. It cannot be changed: its line is in neither file, its mark stays.
    const line = JSON.stringify({ index: 1, isError: false, line: "one (earlier version)" });
    await assert.rejects(admin.eval(EARLIER_PUT_RESULT_LUA, 2, results, done, "1", line), /WRONGTYPE/);
    assert.equal(await admin.hget(done, "1"), "1", "the mark of a result that was never kept");
    // Its rewrite finds the mark: refused as "written by another", the line lost for it.
    assert.equal(await admin.eval(EARLIER_PUT_RESULT_LUA, 2, results, done, "1", line), 0);
    // The batch resumed here (the earlier replica's end fails on the sorted set too: its lease goes): line 1 runs
    // again, and its result is kept. The old script refused it for the mark (0): in neither file, for good.
    assert.equal(await rows.putResult("batch_mixed", { index: 1, isError: false, line: "one" }), true);
    assert.deepEqual(await pagesOf(rows, "batch_mixed", 1024), [["zero", "one"]]);
    // Kept once: a second result for it is refused as before, and so is one for a line the earlier version did keep.
    assert.equal(await rows.putResult("batch_mixed", { index: 1, isError: true, line: "one again" }), false);
    await admin.hset(done, "2", "1");
    await admin.zadd(results, 2, JSON.stringify({ index: 2, isError: false, line: "two (earlier, converted)" }));
    assert.equal(await rows.putResult("batch_mixed", { index: 2, isError: false, line: "two again" }), false);
  },
);

test("replaceBatch: written only over the JSON read; the runnable set follows the status", skip, async (t) => {
  const redis = await useRedisServer(t);
  const [a, b] = [await rowsOn(redis.url, t), await rowsOn(redis.url, t)];
  await a.putBatch(row("batch_1", '{"status":"in_progress"}'));
  assert.deepEqual(await b.runnableBatchIds(), ["batch_1"]);
  assert.equal(await b.replaceBatch(row("batch_1", '{"status":"cancelling"}'), '{"status":"in_progress"}'), true);
  // A's view is stale: its write is refused, the cancel stays.
  assert.equal(
    await a.replaceBatch(row("batch_1", '{"status":"in_progress","n":1}'), '{"status":"in_progress"}'),
    false,
  );
  assert.equal((await a.batch("batch_1"))?.json, '{"status":"cancelling"}');
  assert.equal(await a.replaceBatch(row("batch_1", '{"status":"done"}'), '{"status":"cancelling"}'), true);
  assert.deepEqual(await b.runnableBatchIds(), []);
});

test("a lease is one holder's: renewed by it, refused to another until it lapses or is dropped", skip, async (t) => {
  const redis = await useRedisServer(t);
  const [a, b] = [await rowsOn(redis.url, t), await rowsOn(redis.url, t)];
  assert.equal(await a.takeLease("batch_1", "runner_a", 300), true);
  assert.equal(await b.takeLease("batch_1", "runner_b", 300), false);
  assert.equal(await a.takeLease("batch_1", "runner_a", 300), true, "renewed");
  await b.dropLease("batch_1", "runner_b");
  assert.equal(await b.takeLease("batch_1", "runner_b", 300), false, "another's drop does not free it");
  await sleep(400);
  assert.equal(await b.takeLease("batch_1", "runner_b", 300), true, "lapsed: taken over");
  assert.equal(await a.takeLease("batch_1", "runner_a", 300), false, "the old holder has lost it");
  await b.dropLease("batch_1", "runner_b");
  assert.equal(await a.takeLease("batch_1", "runner_a", 300), true);
});

test(
  "two books on one Redis adding files at once never keep more than max_files; bytes come back whole",
  skip,
  async (t) => {
    const redis = await useRedisServer(t);
    const settings = (): BatchSettings => ({
      concurrency: 1,
      maxFileBytes: 4 * 1024 * 1024,
      maxLines: 10,
      maxFiles: 3,
      maxBatches: 3,
      retentionMs: 3_600_000,
      completionWindowMs: 3_600_000,
      leaseMs: 30_000,
    });
    const books = [
      new BatchBooks(await rowsOn(redis.url, t), systemClock, settings),
      new BatchBooks(await rowsOn(redis.url, t), systemClock, settings),
    ];
    const fileOf = (id: string, bytes: number): StoredFile => {
      const createdAt = Math.floor(Date.now() / 1000);
      return { id, owner: "", bytes, createdAt, expiresAt: createdAt + 3600, filename: "x", purpose: "batch" };
    };
    await Promise.all(
      Array.from({ length: 10 }, (_, index) =>
        books[index % 2]?.addFile(fileOf(`file-${index}`, 1), Buffer.from(String(index))),
      ),
    );
    assert.equal((await books[0]?.files(null))?.length, 3);
    // 2.5 MiB: three chunks, read back on the other books.
    const big = Buffer.alloc(2.5 * 1024 * 1024, 7);
    big[big.length - 1] = 9;
    await books[0]?.addFile(fileOf("file-big", big.length), big);
    assert.deepEqual(await books[1]?.fileContent("file-big", null), big);
  },
);
