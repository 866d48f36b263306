// The tool-call extras', answer cache's and batches' Lua scripts go to Redis by digest (EVALSHA), as the kept
// responses' do (redis-kept-scripts.test.ts): a tool-call keep sent KEEP_WITHIN_BUDGET_LUA's whole text (~2 KB) as
// EVAL with every call. The text goes once per connection (and key count), and again after Redis lost its script
// cache (SCRIPT FLUSH, a restart, a failover): the calls still land then. Standalone and on the 3-master Cluster.
import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { Redis } from "ioredis";
import { closeWhenTestEnds } from "../../test/helpers/late-start.ts";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../../test/helpers/redis-cluster.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { scriptCallsByCommand } from "../../test/helpers/redis-state.ts";
import { ManualClock } from "../clock.ts";
import { RedisAnswerRows } from "./redis-answer-rows.ts";
import { RedisBatchRows } from "./redis-batch-rows.ts";
import { createCommandClient } from "./redis-client.ts";
import { REDIS_TOOL_CALL_EXTRAS_LIMITS, RedisToolCallExtras } from "./redis-tool-call-extras.ts";
import { clientScope, MemoryToolCallExtras, TOOL_CALL_EXTRAS_LIMITS } from "./tool-call-extras.ts";

const ANSWER_LIMITS = { ttlMs: 60_000, maxEntries: 100, maxBytes: 1 << 20 };
const alice = clientScope("alice");

/** The three stores on one Redis (or Cluster), each a replica's; `round` writes and reads back through each. */
async function storesOn(t: TestContext, url: string, isCluster: boolean) {
  const extrasOf = async () => {
    const local = new MemoryToolCallExtras(TOOL_CALL_EXTRAS_LIMITS, new ManualClock());
    const store = new RedisToolCallExtras(url, "digest:", isCluster, local, REDIS_TOOL_CALL_EXTRAS_LIMITS);
    await closeWhenTestEnds(t, () => store.close());
    await store.connect();
    return store;
  };
  const [writer, reader] = [await extrasOf(), await extrasOf()];
  const answers = new RedisAnswerRows(() => createCommandClient(url, isCluster, 2_000), "digest:");
  t.after(() => answers.close());
  answers.open();
  const batches = new RedisBatchRows(url, "digest:", isCluster, (json) => !json.includes('"done"'));
  await batches.connect();
  t.after(() => batches.close());
  for (let tries = 0; (await answers.get("probe", 0).catch(() => "down")) === "down"; tries++) {
    assert.ok(tries < 200, "the answer rows never connected");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return async (round: number): Promise<void> => {
    // Another replica (its own memory empty) reads the extra back: the script kept it in Redis.
    await writer.remember([{ id: `${alice}call-${round}`, extra: { reasoning_details: [{ text: `r${round}` }] } }]);
    assert.deepEqual([...(await reader.recall([`${alice}call-${round}`])).keys()], [`${alice}call-${round}`]);
    assert.deepEqual(await answers.put(`a${round}`, "x", 1_000 + round, ANSWER_LIMITS), { entries: 1, bytes: 1 });
    assert.equal(await answers.get(`a${round}`, 0), "x");
    assert.equal(await answers.clear(), 1);
    await batches.putBatch({ id: `batch_${round}`, owner: "", createdAtMs: 0, json: '{"status":"running"}' });
    const done = { id: `batch_${round}`, owner: "", createdAtMs: 0, json: '{"status":"done"}' };
    assert.equal(await batches.replaceBatch(done, '{"status":"running"}'), true);
    assert.equal(await batches.putResult(`batch_${round}`, { index: 0, isError: false, line: `line ${round}` }), true);
    assert.equal(await batches.takeLease(`batch_${round}`, "runner", 60_000), true);
    await batches.dropLease(`batch_${round}`, "runner");
    assert.equal(await batches.takeLease(`batch_${round}`, "other", 60_000), true, "the drop freed the lease");
  };
}

/** EVAL and EVALSHA calls summed over `urls` (every master of a Cluster). */
async function scriptCallsOn(t: TestContext, urls: readonly string[]) {
  const counters = await Promise.all(urls.map((url) => scriptCallsByCommand(t, url)));
  return async () => {
    const counts = await Promise.all(counters.map((count) => count()));
    return counts.reduce((sum, count) => ({ eval: sum.eval + count.eval, evalsha: sum.evalsha + count.evalsha }));
  };
}

async function flushScripts(t: TestContext, urls: readonly string[]): Promise<void> {
  for (const url of urls) {
    const admin = new Redis(url, { lazyConnect: true });
    t.after(() => admin.disconnect());
    await admin.connect();
    await admin.script("FLUSH");
  }
}

/**
 * 10 rounds of 7 scripts (keep, put, clear, replace, put result, take lease, drop lease, take lease): about 80 script
 * calls, their text sent at most once per script and connection (`maxEvals`); then a SCRIPT FLUSH on every node, and
 * 3 more rounds still land, by digest again once each script was sent once more.
 */
async function assertByDigest(t: TestContext, urls: readonly string[], isCluster: boolean, maxEvals: number) {
  const round = await storesOn(t, urls[0] ?? "", isCluster);
  const calls = await scriptCallsOn(t, urls);
  for (let index = 0; index < 10; index++) await round(index);
  const before = await calls();
  assert.ok(
    before.eval <= maxEvals,
    `${before.eval} EVALs (one per script and connection), ${before.evalsha} EVALSHAs`,
  );
  assert.ok(before.evalsha >= 60, `${before.evalsha} EVALSHAs`);
  await flushScripts(t, urls);
  for (let index = 100; index < 103; index++) await round(index);
  const after = await calls();
  assert.ok(after.eval - before.eval <= maxEvals, `${after.eval - before.eval} EVALs after the flush`);
  assert.ok(after.evalsha - before.evalsha >= 12, `${after.evalsha - before.evalsha} EVALSHAs after the flush`);
}

test("redis: the extras', answer cache's and batches' scripts are sent by digest; a SCRIPT FLUSH is survived", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const server = await useRedisServer(t);
  await assertByDigest(t, [server.url], false, 8);
});

test("redis cluster: the same scripts by digest on every master; a SCRIPT FLUSH on every master is survived", {
  skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING,
}, async (t) => {
  const cluster = await useRedisCluster(t);
  await assertByDigest(
    t,
    cluster.nodes.map((node) => node.url),
    true,
    24,
  );
});
