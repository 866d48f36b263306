// The answer cache's rows in Redis (standalone and Cluster): kept and read by key, bounded by count, bytes and age
// (oldest first, in the put's own script), and cleared fleet-wide.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../../test/helpers/redis-cluster.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { RedisAnswerRows } from "./redis-answer-rows.ts";
import { createCommandClient } from "./redis-client.ts";

const LIMITS = { ttlMs: 60_000, maxEntries: 3, maxBytes: 100 };

let prefixCounter = 0;

async function rowsOn(t: TestContext, url: string, isCluster: boolean): Promise<RedisAnswerRows> {
  const rows = new RedisAnswerRows(() => createCommandClient(url, isCluster, 2_000), `answers${prefixCounter++}:`);
  t.after(() => rows.close());
  rows.open();
  // Connected in the background: wait until a command goes through.
  for (let tries = 0; tries < 100; tries++) {
    try {
      await rows.get("probe", 0);
      return rows;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  throw new Error("the answer rows never connected");
}

async function runScript(rows: RedisAnswerRows): Promise<void> {
  assert.deepEqual(await rows.put("a", "x".repeat(10), 1_000, LIMITS), { entries: 1, bytes: 10 });
  assert.equal(await rows.get("a", 0), "x".repeat(10));
  assert.equal(await rows.get("a", 1_000), undefined, "kept at 1000: older than a lookup's oldest kept time of 1000");
  // Replacing a row counts its bytes once.
  assert.deepEqual(await rows.put("a", "y".repeat(20), 1_001, LIMITS), { entries: 1, bytes: 20 });
  await rows.put("b", "b", 1_002, LIMITS);
  await rows.put("c", "c", 1_003, LIMITS);
  assert.deepEqual(await rows.put("d", "d", 1_004, LIMITS), { entries: 3, bytes: 3 }, "the oldest (a) went first");
  assert.equal(await rows.get("a", 0), undefined);
  // Past the byte cap (3 + 99 > 100): the oldest go until it fits (b, c), d stays.
  assert.deepEqual(await rows.put("e", "e".repeat(99), 1_005, LIMITS), { entries: 2, bytes: 100 });
  assert.deepEqual(await rows.count(), { entries: 2, bytes: 100 }, "count reads what the puts left");
  assert.equal(await rows.get("d", 0), "d");
  // Expired rows are dropped by the next put.
  assert.deepEqual(await rows.put("f", "f", 1_005 + 60_000, LIMITS), { entries: 1, bytes: 1 });
  assert.equal(await rows.clear(), 1);
  assert.equal(await rows.get("f", 0), undefined);
  assert.deepEqual(await rows.count(), { entries: 0, bytes: 0 });
  assert.deepEqual(await rows.put("g", "g", 70_000, LIMITS), { entries: 1, bytes: 1 });
  // Rows their requests kept for 10 ms (x-gateway-cache-ttl): a miss after that, swept by the next put as expired,
  // and at max_entries they make the room, not the live row kept before them.
  await rows.put("s1", "s", 70_001, LIMITS, 70_011);
  await rows.put("s2", "s", 70_001, LIMITS, 70_011);
  assert.equal(await rows.get("s1", 70_010 - LIMITS.ttlMs), "s");
  assert.equal(await rows.get("s1", 70_011 - LIMITS.ttlMs), undefined, "past its own end");
  assert.deepEqual(await rows.put("h", "h", 70_100, LIMITS), { entries: 2, bytes: 2 }, "both short ones went");
  assert.equal(await rows.get("g", 70_100 - LIMITS.ttlMs), "g", "the live row kept before them stays");
  assert.equal(await rows.get("h", 70_100 - LIMITS.ttlMs), "h");
  await rows.put("s3", "s", 70_101, LIMITS, 80_000);
  await rows.put("i", "i", 70_102, LIMITS);
  assert.equal(await rows.get("g", 70_102 - LIMITS.ttlMs), "g", "full: the short one, not the oldest live one, went");
  assert.equal(await rows.get("s3", 70_102 - LIMITS.ttlMs), undefined);
}

describe("RedisAnswerRows", () => {
  test("standalone: bounded by count, bytes and age, oldest first; clear drops all", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const server = await useRedisServer(t);
    await runScript(await rowsOn(t, server.url, false));
  });

  test("Redis Cluster: the same, every key in one slot", {
    skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING,
  }, async (t) => {
    const cluster = await useRedisCluster(t);
    await runScript(await rowsOn(t, cluster.url, true));
  });
});
