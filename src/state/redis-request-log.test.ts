// The request log's rows in Redis (standalone and Cluster): two clients' requests with the same id (ids are the
// clients' choice) are two rows, each client's lookup finds its own, an unnamed lookup the last written; retention
// drops rows and the id pointers that named them, not a pointer a later row took over; rows of earlier versions
// (keyed by id alone) are still found.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../../test/helpers/redis-cluster.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { closeClient, createCommandClient } from "./redis-client.ts";
import { RedisRequestLogBackend } from "./redis-request-log.ts";

let prefixCounter = 0;

function row(id: string, startedAtMs: number, client?: string) {
  const json = JSON.stringify({ id, startedAtMs, ...(client === undefined ? {} : { client }) });
  return { id, startedAtMs, models: ["m"], providers: ["p"], status: 200, client, json };
}

async function backendOn(t: TestContext, url: string, isCluster: boolean, prefix: string) {
  const backend = new RedisRequestLogBackend(url, prefix, isCluster);
  t.after(() => backend.close());
  await backend.connect();
  return backend;
}

async function runScript(t: TestContext, url: string, isCluster: boolean): Promise<void> {
  const prefix = `log${prefixCounter++}:`;
  const backend = await backendOn(t, url, isCluster, prefix);
  await backend.append([row("shared", 1_000, "team-b"), row("other", 1_001)]);
  await backend.append([row("shared", 1_002, "team-a")]);
  const clientOf = async (client?: string) => {
    const text = await backend.get("shared", client);
    return text === undefined ? "(none)" : ((JSON.parse(text) as { client?: string }).client ?? "(unnamed)");
  };
  assert.equal(await clientOf("team-b"), "team-b", "team-a's later row hides team-b's");
  assert.equal(await clientOf("team-a"), "team-a");
  assert.equal(await clientOf("team-c"), "(none)");
  assert.equal(await clientOf(), "team-a", "an unnamed lookup: the last row written with the id");
  assert.equal((await backend.query({ limit: 10 })).length, 3, "both rows with the id are kept");

  // An unnamed request reusing the id afterwards: the newest for unnamed lookups; named lookups still their own.
  await backend.append([row("shared", 1_003)]);
  assert.equal(await clientOf(), "(unnamed)");
  assert.equal(await clientOf("team-a"), "team-a");

  // Retention by count drops the two oldest (team-b's "shared", "other"); the pointer of "shared" names the newest
  // row and stays.
  await backend.prune(2, 0);
  assert.equal(await clientOf("team-b"), "(none)");
  assert.equal(await backend.get("other"), undefined);
  assert.equal(await clientOf(), "(unnamed)");
  // Retention by age drops the rest: nothing is found, whoever asks.
  await backend.prune(10, 2_000);
  assert.equal(await clientOf(), "(none)");
  assert.equal(await clientOf("team-a"), "(none)");

  // A row an earlier version wrote (its field is its id alone, no pointer): found by the unnamed lookup, and by its
  // own client only.
  const redis = createCommandClient(url, isCluster, 2_000);
  t.after(() => closeClient(redis));
  await redis.connect();
  const legacy = row("legacy", 3_000, "team-a");
  await redis.zadd(`${prefix}{requests}`, legacy.startedAtMs, legacy.id);
  await redis.hset(`${prefix}{requests}:rows`, legacy.id, JSON.stringify(legacy));
  assert.equal(await backend.get("legacy"), legacy.json);
  assert.equal(await backend.get("legacy", "team-a"), legacy.json);
  assert.equal(await backend.get("legacy", "team-b"), undefined);
  await backend.prune(10, 4_000);
  assert.equal(await backend.get("legacy"), undefined);
}

describe("RedisRequestLogBackend", () => {
  test("standalone: same-id rows of two clients are both kept and found by their own client", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const server = await useRedisServer(t);
    await runScript(t, server.url, false);
  });

  test("Redis Cluster: the same, every key in one slot", {
    skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING,
  }, async (t) => {
    const cluster = await useRedisCluster(t);
    await runScript(t, cluster.url, true);
  });
});
