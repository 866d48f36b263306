// Start-up against a Redis Cluster that does not become ready: a cluster whose state is `fail` (or whose CLUSTER INFO
// misses the command timeout on a loaded machine) fails ioredis's ready check, and ioredis then reconnects without
// ever settling the first connect(): a gateway awaiting it never started. Here a one-node cluster serving a part of
// the slots (full coverage required: cluster_state:fail) stands for both.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { closeWhenTestEnds } from "../../test/helpers/late-start.ts";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING } from "../../test/helpers/redis-cluster.ts";
import { freePort, spawnRedisOnPort } from "../../test/helpers/redis-server.ts";
import { systemClock } from "../clock.ts";
import { buildConfig } from "../config/load.ts";
import { AvailabilityBook } from "../limits/availability.ts";
import { createRedisStateBackend } from "./redis-state.ts";

const COOLDOWN_DEFAULTS = buildConfig({}, undefined, { env: {} }).config.cooldowns;

test("a Redis Cluster whose state is fail: start-up ends within its bound, degraded, and logs why", {
  skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING,
  timeout: 30_000,
}, async (t) => {
  const directory = mkdtempSync(join(tmpdir(), "redis-cluster-fail-"));
  let node: Awaited<ReturnType<typeof spawnRedisOnPort>>;
  let port: number;
  do {
    port = await freePort();
    node = await spawnRedisOnPort(port, [
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      join(directory, "nodes.conf"),
      "--dir",
      directory,
    ]);
  } while (node === undefined);
  const child = node;
  await closeWhenTestEnds(t, () => {
    child.kill("SIGKILL");
    rmSync(directory, { recursive: true, force: true });
  });
  const added = spawnSync("redis-cli", ["-p", String(port), "cluster", "addslotsrange", "0", "100"], {
    encoding: "utf8",
  });
  assert.equal(added.stdout.trim(), "OK", added.stderr);
  const warnings: string[] = [];
  const startedAt = Date.now();
  const state = await createRedisStateBackend(
    {
      path: "",
      redisUrl: `redis://127.0.0.1:${port}`,
      redisKeyPrefix: "start:",
      redisCluster: true,
      flushIntervalMs: 1_000,
      redisCommandTimeoutMs: 200,
    },
    new AvailabilityBook(systemClock, COOLDOWN_DEFAULTS),
    systemClock,
    { info: () => {}, warn: (_object, message) => warnings.push(message) },
  );
  await closeWhenTestEnds(t, () => state.close());
  const tookMs = Date.now() - startedAt;
  assert.ok(tookMs < 15_000, `start-up took ${tookMs} ms`);
  assert.equal(state.status().isDegraded, true, "Redis is not ready: local state");
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(
    warnings.some((message) => /redis/i.test(message)),
    `a warning says Redis is unavailable: ${JSON.stringify(warnings)}`,
  );
});
