// The kept responses' Lua scripts go to Redis by digest (EVALSHA): a put sent PUT_LUA's whole text (~3.4 KB) with
// every call as EVAL. The whole text goes once per connection, and again after Redis lost its script cache (SCRIPT
// FLUSH, a restart, a failover to a replica that never ran it): the write still lands then.
import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { Redis } from "ioredis";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../../test/helpers/redis-cluster.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { scriptCallsByCommand } from "../../test/helpers/redis-state.ts";
import { ManualClock } from "../clock.ts";
import type { KeptResponseRow } from "./embedded-kept-responses.ts";
import { RedisKeptResponses } from "./redis-kept-responses.ts";

const LIMITS = { maxEntries: 1_000, maxBytes: 1 << 20, maxAgeMs: 60_000 };

const row = (id: string, touchIds?: string[]): KeptResponseRow => ({
  id,
  json: JSON.stringify({ id, text: "x".repeat(100) }),
  itemIds: [`msg_${id}`],
  ...(touchIds === undefined ? {} : { touchIds }),
});

/** A chain of `count` rows from `first`, each pointing to the ones before it; the store is read back. */
async function writeChain(store: RedisKeptResponses, clock: ManualClock, first: number, count: number) {
  const ids: string[] = [];
  for (let index = first; index < first + count; index++) {
    const id = `resp_${index}`;
    assert.equal(await store.put(row(id, ids.length === 0 ? undefined : [...ids])), true, `${id}: its links kept`);
    ids.push(id);
    clock.advance(1);
  }
  for (const id of ids) assert.equal(await store.get(id), row(id).json, `${id} kept`);
}

async function adminOf(t: TestContext, url: string): Promise<Redis> {
  const admin = new Redis(url, { lazyConnect: true });
  t.after(() => admin.disconnect());
  await admin.connect();
  return admin;
}

test("redis: kept responses' scripts are sent by digest; after a SCRIPT FLUSH the next write still lands", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const server = await useRedisServer(t);
  const clock = new ManualClock(Date.now());
  const store = new RedisKeptResponses(server.url, "scripts:", false, LIMITS, clock);
  await store.connect();
  t.after(() => store.close());
  const calls = await scriptCallsByCommand(t, server.url);
  await writeChain(store, clock, 0, 10);
  assert.equal(await store.delete("resp_9"), true);
  const before = await calls();
  // 10 puts (each its write and its eviction script) and a delete: 21 scripts. The whole text of each script goes
  // once on the connection (ioredis sends EVAL first on a socket), then its digest.
  assert.ok(before.eval <= 3, `${before.eval} EVALs (one per script at most), ${before.evalsha} EVALSHAs`);
  assert.ok(before.evalsha >= 18, `${before.evalsha} EVALSHAs`);

  await (await adminOf(t, server.url)).script("FLUSH");
  await writeChain(store, clock, 100, 3);
  assert.equal(await store.delete("resp_102"), true);
  const after = await calls();
  // Each script the cache lost: one NOSCRIPT, then its text once more; then digests again.
  assert.ok(after.eval - before.eval <= 3, `${after.eval - before.eval} EVALs after the flush`);
  assert.ok(after.evalsha - before.evalsha >= 7, `${after.evalsha - before.evalsha} EVALSHAs after the flush`);
});

test("redis cluster: the scripts by digest, their keys in one slot; a SCRIPT FLUSH on every master is survived", {
  skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING,
}, async (t) => {
  const cluster = await useRedisCluster(t);
  const clock = new ManualClock(Date.now());
  const store = new RedisKeptResponses(cluster.url, "scripts:", true, LIMITS, clock);
  await store.connect();
  t.after(() => store.close());
  const counters = await Promise.all(cluster.nodes.map((node) => scriptCallsByCommand(t, node.url)));
  const total = async () => {
    const counts = await Promise.all(counters.map((count) => count()));
    return counts.reduce((sum, count) => ({ eval: sum.eval + count.eval, evalsha: sum.evalsha + count.evalsha }));
  };
  // Several writes in one turn of the event loop: ioredis auto-pipelines them by the slot of their first argument.
  await Promise.all([0, 1, 2, 3].map((index) => store.put(row(`resp_solo_${index}`))));
  await writeChain(store, clock, 0, 10);
  const before = await total();
  assert.ok(before.eval <= 6, `${before.eval} EVALs, ${before.evalsha} EVALSHAs`);
  assert.ok(before.evalsha >= 18, `${before.evalsha} EVALSHAs`);
  for (const node of cluster.nodes) await (await adminOf(t, node.url)).script("FLUSH");
  await writeChain(store, clock, 100, 3);
  assert.equal(await store.get("resp_solo_3"), row("resp_solo_3").json);
});
