// A batch line's result that its store refuses (the state file locked by another process past the 5 s wait) is kept
// and written again: the batch ends only once every finished line is in its files, each once. The old runner only
// logged the refused write: the line was then in neither file, for good. The same with Redis unreachable while lines
// finish (a proxy drops the connection carrying a result's write, which so never reaches Redis: a hung Redis would
// not do, the write it timed out on still lands once it runs again). And a write that landed but whose answer was lost
// (the proxy mutes Redis's reply, then drops the connection): written again, it is found kept and the line counts then.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";
import type { Batch } from "openai/resources/batches";
import {
  chatLine,
  createBatch,
  echoing,
  isFinished,
  linesOf,
  providersYaml,
  UPSTREAM_ID,
  upload,
  waitForBatch,
} from "../helpers/batches-scene.ts";
import { CHAT_ROUTE, openAiClient, useGateway, useMock } from "../helpers/e2e.ts";
import { startGatewayProcess } from "../helpers/gateway-process.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";
import { useRedisProxy } from "../helpers/redis-proxy.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../helpers/redis-server.ts";
import { lockInAnotherProcess } from "../helpers/sqlite-lock.ts";

/** What the exit says of each batch's lines it leaves without a result. */
const EXIT_WARNING = "batch: results not written at the exit; these lines run again after a restart";
/** The mock's answer time: the lock is taken while every line is in flight, before any answers. */
const ANSWER_DELAY_MS = 2_000;
/** Longer than the state file's lock wait (5 s) after the answers: every result write is refused at first. */
const LOCK_HELD_MS = 8_500;

/**
 * Another process takes the file's write lock and holds it `heldMs` (as state-file-locks.test.ts does: its own timer,
 * so nothing in the gateway's process can release it early). Resolves once the lock is taken.
 */
function resultRows(path: string, batchId: string): number {
  const reader = new DatabaseSync(path, { readOnly: true });
  try {
    const row = reader.prepare("SELECT COUNT(*) AS count FROM batch_results WHERE batch_id = ?").get(batchId);
    return Number(row?.count ?? 0);
  } finally {
    reader.close();
  }
}

describe("batch results the store refuses", () => {
  test("a state file locked past the wait while lines finish: after release the batch completes with every line once", async (t) => {
    const mock = await useMock(t);
    echoing(mock, ANSWER_DELAY_MS);
    const statePath = join(mkdtempSync(join(tmpdir(), "batch-writes-")), "state.db");
    const gateway = await useGateway(
      t,
      `${providersYaml(mock)}state:\n  path: ${JSON.stringify(statePath)}\nbatches:\n  concurrency: 4\n`,
    );
    const client = openAiClient(gateway);
    const ids = ["a", "b", "c", "d"];
    const file = await upload(client, `${ids.map((id) => chatLine(id, `line ${id}`)).join("\n")}\n`);
    const batch = await createBatch(client, file.id);
    await mock.waitForRequests(ids.length, 10_000);

    const released = await lockInAnotherProcess(t, statePath, LOCK_HELD_MS);
    await released.done;
    const done = await waitForBatch(client, batch.id, isFinished, 30_000);

    assert.equal(done.status, "completed");
    const output = await linesOf(client, done.output_file_id);
    assert.deepEqual(output.map((line) => line.custom_id).sort(), ids);
    assert.deepEqual(await linesOf(client, done.error_file_id), []);
    assert.deepEqual(done.request_counts, { total: 4, completed: 4, failed: 0 });
    assert.equal(resultRows(statePath, batch.id), 4);
    // Each line was sent once: a kept result is written again, never its line run again.
    assert.equal(mock.requests.length, ids.length);
  });

  test("Redis unreachable while lines finish: once it is reached again the batch completes with every line once", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const mock = await useMock(t);
    echoing(mock, ANSWER_DELAY_MS);
    const redis = await useRedisServer(t);
    let isRefusing = false;
    let refusedWrites = 0;
    const proxy = await useRedisProxy(t, redis.port, (text) => {
      if (!isRefusing || !text.includes("results:")) return undefined;
      // The write never reaches Redis: its connection goes, as on a network cut.
      refusedWrites += 1;
      setImmediate(() => proxy.dropConnections());
      return new Promise<void>(() => {});
    });
    const gateway = await useGateway(
      t,
      `${providersYaml(mock)}state:\n  path: ":memory:"\n  redis_url: ${proxy.url}\n  redis_key_prefix: "batch-writes-e2e:"\nbatches:\n  concurrency: 4\n`,
    );
    const client = openAiClient(gateway);
    const ids = ["a", "b", "c", "d"];
    const file = await upload(client, `${ids.map((id) => chatLine(id, `line ${id}`)).join("\n")}\n`);
    const batch = await createBatch(client, file.id);
    await mock.waitForRequests(ids.length, 10_000);

    isRefusing = true;
    await sleep(ANSWER_DELAY_MS + 1_500);
    isRefusing = false;
    assert.ok(refusedWrites > 0, "no result write was refused: the test did not cut anything");
    // The gateway's own reads answer 503 until its connection is made again (a second at most).
    for (let tries = 0; ; tries++) {
      try {
        await client.batches.retrieve(batch.id);
        break;
      } catch (error) {
        assert.ok(tries < 100, `the gateway did not reach Redis again: ${String(error)}`);
        await sleep(50);
      }
    }
    const done = await waitForBatch(client, batch.id, isFinished, 30_000);

    assert.equal(done.status, "completed");
    const output = await linesOf(client, done.output_file_id);
    assert.deepEqual(output.map((line) => line.custom_id).sort(), ids);
    assert.deepEqual(await linesOf(client, done.error_file_id), []);
    assert.deepEqual(done.request_counts, { total: 4, completed: 4, failed: 0 });
    assert.equal(mock.requests.length, ids.length);
  });

  test("a result write that landed but whose answer was lost counts while the batch runs, not only at its end", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const mock = await useMock(t);
    // `slow` is in flight the whole time: the batch still runs when `fast`'s result is written again.
    mock.setDefault(CHAT_ROUTE, (request) => {
      const content = (request.body as { messages: { content: string }[] }).messages.at(-1)?.content ?? "";
      const body = chatCompletion(`echo: ${content}`, UPSTREAM_ID);
      return content === "slow" ? { kind: "json", body, delayMs: 8_000 } : { kind: "json", body };
    });
    const redis = await useRedisServer(t);
    let isArmed = false;
    let landedWrites = 0;
    const proxy = await useRedisProxy(t, redis.port, (text) => {
      // A result's write names the batch's results and done keys (a read of the results names only the first).
      if (!isArmed || !text.includes("results:") || !text.includes("done:")) return undefined;
      // The write goes on to Redis and lands; its answer never comes back: the connection goes right after.
      isArmed = false;
      landedWrites += 1;
      proxy.muteReplies();
      setTimeout(() => proxy.dropConnections(), 100);
      return undefined;
    });
    const gateway = await useGateway(
      t,
      `${providersYaml(mock)}state:\n  path: ":memory:"\n  redis_url: ${proxy.url}\n  redis_key_prefix: "batch-landed-e2e:"\nbatches:\n  concurrency: 2\n`,
    );
    const client = openAiClient(gateway);
    const file = await upload(client, `${[chatLine("slow", "slow"), chatLine("fast", "fast")].join("\n")}\n`);
    isArmed = true;
    const batch = await createBatch(client, file.id);
    await mock.waitForRequests(2, 10_000);
    // Its rewrite finds the result it wrote kept: the line counts now. The old runner took it for another's result
    // and counted it only in the final counts, from the files.
    let counted: Batch | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(50)) {
      // A read while the gateway's connection is made again answers 503: looked at again.
      const kept = await client.batches.retrieve(batch.id).catch(() => undefined);
      if (kept !== undefined && ((kept.request_counts?.completed ?? 0) >= 1 || isFinished(kept))) {
        counted = kept;
        break;
      }
    }
    assert.ok(counted !== undefined, "the batch never counted a line");
    assert.equal(landedWrites, 1, "the proxy lost the answer of fast's write");
    assert.equal(counted.status, "in_progress", "slow is still in flight");
    assert.deepEqual(counted.request_counts, { total: 2, completed: 1, failed: 0 });
    assert.ok((counted.usage?.output_tokens ?? 0) > 0, "its usage counts too");
    const done = await waitForBatch(client, batch.id, isFinished, 30_000);
    assert.equal(done.status, "completed");
    assert.deepEqual(done.request_counts, { total: 2, completed: 2, failed: 0 });
    // Both answers' usage (10 prompt tokens each, the mock's): the old runner never added fast's, even at the end.
    assert.equal(done.usage?.input_tokens, 20);
    assert.deepEqual(
      (await linesOf(client, done.output_file_id)).map((line) => line.custom_id),
      ["slow", "fast"],
    );
    assert.equal(mock.requests.length, 2, "fast ran once: its result was written again, not its line run again");
  });

  test("the exit with results still unwritten: logged by custom_id, and after a restart each line is in the output once", async (t) => {
    const mock = await useMock(t);
    // The answers wait for the lock: a slow start of the locking process must not let a result land first.
    const gate = Promise.withResolvers<void>();
    echoing(mock, undefined, gate.promise);
    const statePath = join(mkdtempSync(join(tmpdir(), "batch-writes-")), "state.db");
    const yaml = `${providersYaml(mock)}state:\n  path: ${JSON.stringify(statePath)}\nbatches:\n  concurrency: 4\n`;
    const first = await startGatewayProcess(t, yaml);
    const firstClient = new OpenAI({ baseURL: `${first.url}/v1`, apiKey: "x", maxRetries: 0 });
    const ids = ["a", "b", "c"];
    const file = await upload(firstClient, `${ids.map((id) => chatLine(id, `line ${id}`)).join("\n")}\n`);
    const batch = await createBatch(firstClient, file.id);
    await mock.waitForRequests(ids.length, 10_000);

    const lock = await lockInAnotherProcess(t, statePath, 60_000);
    gate.resolve();
    const kept =
      "batch: a line's result could not be written; kept in memory and written again, no line starts meanwhile";
    for (let waitedMs = 0; !first.logs.some((line) => line.msg === kept); waitedMs += 100) {
      assert.ok(waitedMs < 15_000, "the refused result writes were not logged");
      await sleep(100);
    }
    // A graceful exit while the file is still locked: nothing kept can be written.
    process.kill(first.pid ?? 0, "SIGTERM");
    await first.exited;
    const atExit = first.logs.find((line) => line.msg === EXIT_WARNING);
    assert.ok(atExit !== undefined, "the exit did not say which results it left unwritten");
    const keptIds = atExit.customIds as string[];
    assert.ok(keptIds.length > 0, "the result kept unwritten (logged above) was not named");
    // The other two answers came at the same moment (the gate), but on a loaded machine their refused writes may end
    // after the SIGTERM: those lines were in flight at the exit, not kept, and are named so. Each line once.
    assert.deepEqual([...keptIds, ...(atExit.inFlightCustomIds as string[])].sort(), ids);

    await lock.release();
    const second = await startGatewayProcess(t, yaml);
    const secondClient = new OpenAI({ baseURL: `${second.url}/v1`, apiKey: "x", maxRetries: 0 });
    const done = await waitForBatch(secondClient, batch.id, isFinished, 30_000);
    assert.equal(done.status, "completed");
    const output = await linesOf(secondClient, done.output_file_id);
    assert.deepEqual(output.map((line) => line.custom_id).sort(), ids);
    assert.deepEqual(done.request_counts, { total: 3, completed: 3, failed: 0 });
    // Run again after the restart (they had no row): sent twice upstream, in the file once.
    assert.equal(mock.requests.length, 2 * ids.length);
  });

  test("the exit with lines in flight: its warning names them as aborted in flight, not the lines never started", async (t) => {
    const mock = await useMock(t);
    // No answer ever comes: the two lines the runner starts are in flight until the exit aborts them.
    mock.setDefault(CHAT_ROUTE, { kind: "hang" });
    const statePath = join(mkdtempSync(join(tmpdir(), "batch-writes-")), "state.db");
    const gateway = await startGatewayProcess(
      t,
      `${providersYaml(mock)}state:\n  path: ${JSON.stringify(statePath)}\nbatches:\n  concurrency: 2\n`,
    );
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: "x", maxRetries: 0 });
    const ids = ["a", "b", "c"];
    await createBatch(client, (await upload(client, `${ids.map((id) => chatLine(id, `line ${id}`)).join("\n")}\n`)).id);
    await mock.waitForRequests(2, 10_000);

    process.kill(gateway.pid ?? 0, "SIGTERM");
    await gateway.exited;
    const atExit = gateway.logs.find((line) => line.msg === EXIT_WARNING);
    // The old runner named only results kept unwritten: lines aborted in flight (sent upstream, maybe charged, run
    // again after a restart) went unsaid.
    assert.ok(atExit !== undefined, "the exit did not name the lines it aborted in flight");
    assert.deepEqual(atExit.customIds, [], "no result was kept unwritten");
    // `c` never started: it runs after a restart like any line not yet tried, and is not named.
    assert.deepEqual(atExit.inFlightCustomIds, ["a", "b"]);
    assert.equal(resultRows(statePath, atExit.batchId as string), 0);
  });

  test("a batch's end the store refuses (an error at its finalizing write) ends once the store takes it, not only after a restart", async (t) => {
    const mock = await useMock(t);
    echoing(mock);
    const statePath = join(mkdtempSync(join(tmpdir(), "batch-writes-")), "state.db");
    const gateway = await useGateway(t, `${providersYaml(mock)}state:\n  path: ${JSON.stringify(statePath)}\n`);
    const client = openAiClient(gateway);
    await waitForBatch(
      client,
      (await createBatch(client, (await upload(client, `${chatLine("w", "warm")}\n`)).id)).id,
      isFinished,
    );

    // Any store error at the end: a trigger of another connection refuses the batch's move to `finalizing`.
    const other = new DatabaseSync(statePath);
    t.after(() => other.close());
    other.exec(`CREATE TRIGGER refuse_end BEFORE UPDATE ON batches WHEN NEW.json LIKE '%"status":"finalizing"%'
      BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`);
    const ids = ["a", "b"];
    const file = await upload(client, `${ids.map((id) => chatLine(id, `line ${id}`)).join("\n")}\n`);
    const batch = await createBatch(client, file.id);
    for (let waitedMs = 0; resultRows(statePath, batch.id) < ids.length; waitedMs += 50) {
      assert.ok(waitedMs < 10_000, "the lines' results were not written");
      await sleep(50);
    }
    await sleep(1_500);
    assert.equal((await client.batches.retrieve(batch.id)).status, "in_progress", "the refused end was not refused");
    other.exec("DROP TRIGGER refuse_end");

    const done = await waitForBatch(client, batch.id, isFinished, 10_000);
    assert.equal(done.status, "completed");
    assert.deepEqual((await linesOf(client, done.output_file_id)).map((line) => line.custom_id).sort(), ids);
    assert.deepEqual(done.request_counts, { total: 2, completed: 2, failed: 0 });
  });

  test("the bound: while a result is kept unwritten no line starts; the rest run once it is written", async (t) => {
    const mock = await useMock(t);
    // The answers wait for the lock (see the exit's test above).
    const gate = Promise.withResolvers<void>();
    echoing(mock, undefined, gate.promise);
    const statePath = join(mkdtempSync(join(tmpdir(), "batch-writes-")), "state.db");
    const gateway = await useGateway(
      t,
      `${providersYaml(mock)}state:\n  path: ${JSON.stringify(statePath)}\nbatches:\n  concurrency: 2\n`,
    );
    const client = openAiClient(gateway);
    const ids = ["a", "b", "c", "d", "e", "f"];
    const file = await upload(client, `${ids.map((id) => chatLine(id, `line ${id}`)).join("\n")}\n`);
    const batch = await createBatch(client, file.id);
    await mock.waitForRequests(2, 10_000);

    // Refused at ~5 s (answers once the lock is taken, then the 5 s wait), released at 8.5 s: the old runner started the next two
    // lines as soon as the first two had failed to write, and their results were refused too.
    const released = await lockInAnotherProcess(t, statePath, LOCK_HELD_MS);
    gate.resolve();
    await released.done;
    assert.equal(mock.requests.length, 2, "lines started while results were kept unwritten");

    const done = await waitForBatch(client, batch.id, isFinished, 30_000);
    assert.equal(done.status, "completed");
    assert.deepEqual((await linesOf(client, done.output_file_id)).map((line) => line.custom_id).sort(), ids);
    assert.deepEqual(done.request_counts, { total: 6, completed: 6, failed: 0 });
    assert.equal(mock.requests.length, ids.length);
  });
});
