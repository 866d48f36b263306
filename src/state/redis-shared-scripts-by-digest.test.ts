// The shared client's scripts (forgetLimits, deleteFieldIf, setOver: their key count first, kept out of a Cluster's
// auto-pipelining) and the request log's DROP_POINTERS, sent by digest since a56fbe79, still land after a SCRIPT FLUSH
// on every node (NOSCRIPT answered, the text sent again), many in one turn on tags spread over the masters.
// Standalone and on the 3-master Cluster. Added in review: it passed on the change (no bug found).
import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { Redis } from "ioredis";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../../test/helpers/redis-cluster.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { createCommandClient } from "./redis-client.ts";
import { RedisRequestLogBackend } from "./redis-request-log.ts";

async function flush(t: TestContext, urls: readonly string[]) {
  for (const url of urls) {
    const admin = new Redis(url, { lazyConnect: true });
    t.after(() => admin.disconnect());
    await admin.connect();
    await admin.script("FLUSH");
  }
}

async function run(t: TestContext, urls: readonly string[], isCluster: boolean) {
  const url = urls[0] ?? "";
  const redis = createCommandClient(url, isCluster, 2000);
  redis.on("error", () => {});
  t.after(() => redis.disconnect());
  await redis.connect();
  if (isCluster) await new Promise((r) => setTimeout(r, 300));
  const log = new RedisRequestLogBackend(url, "ev:", isCluster);
  t.after(() => log.close());
  await log.connect();
  for (let round = 0; round < 3; round++) {
    // Many in one turn, on tags spread over the masters.
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      const tag = `{t${i}}`;
      calls.push(redis.setOver(1, `ev:${tag}:m`, `v${round}`, `v${round - 1}`));
      calls.push(redis.hset(`ev:${tag}:h`, "f", "x"));
      calls.push(redis.deleteFieldIf(1, `ev:${tag}:h`, "f", "x"));
      calls.push(redis.forgetLimits(2, `ev:${tag}:fk`, `ev:${tag}:s`, "marker", 60000));
    }
    const results = await Promise.allSettled(calls);
    const failed = results.filter((r) => r.status === "rejected");
    assert.equal(failed.length, 0, String((failed[0] as PromiseRejectedResult | undefined)?.reason));
    const rows = Array.from({ length: 5 }, (_, i) => ({
      id: `r${round}-${i}`,
      client: "c",
      startedAtMs: i,
      json: "{}",
    }));
    await log.append(rows as never);
    await Promise.all([log.prune(0, 10), log.prune(0, 10)]);
    assert.equal(await redis.hlen("ev:{requests}:latest"), 0);
    await flush(t, urls);
  }
}

test("redis: the shared client's scripts and the request log's prune by digest survive a SCRIPT FLUSH", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const server = await useRedisServer(t);
  await run(t, [server.url], false);
});
test("redis cluster: the same on every master, many in one turn", {
  skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING,
}, async (t) => {
  const cluster = await useRedisCluster(t);
  await run(
    t,
    cluster.nodes.map((n) => n.url),
    true,
  );
});
