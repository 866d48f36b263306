// Start-up against a healthy Redis Cluster whose CLUSTER INFO (ioredis's ready check, sent to a master at random)
// misses the command timeout once, as on a loaded machine: ioredis closes the cluster connection and connects again
// ~100 ms later. The gateway was still connecting: it logged "Redis is unreachable ... connection closed", then
// "reachable again", a flake of the tests that require the link never to go down (redis-cluster-slots.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { closeWhenTestEnds } from "../../test/helpers/late-start.ts";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../../test/helpers/redis-cluster.ts";
import { useClusterBackend, waitFor } from "../../test/helpers/redis-cluster-state.ts";

/** Backends started at once: each one's ready check draws one of the two paused masters with odds of 2 in 3. */
const STARTS = 5;

test("a ready check that misses the command timeout at start-up: no 'unreachable' line, shared once started", {
  skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING,
  timeout: 60_000,
}, async (t) => {
  const cluster = await useRedisCluster(t);
  // Every master but the seed pauses its clients' commands for 600 ms: a CLUSTER INFO sent there times out (200 ms).
  const others = cluster.nodes.slice(1).map((node) => new Redis(node.port, { lazyConnect: true }));
  await closeWhenTestEnds(t, () => {
    for (const other of others) other.disconnect();
  });
  await Promise.all(others.map((other) => other.client("PAUSE", 600, "ALL")));
  const backends = await Promise.all(
    Array.from({ length: STARTS }, (_, index) => useClusterBackend(t, cluster, `start-check-${index}:`, 200)),
  );
  await sleep(1_000);
  for (const [index, backend] of backends.entries()) {
    assert.deepEqual(
      backend.logs.filter((line) => /Redis is unreachable|reachable again/.test(line)),
      [],
      `backend ${index}: the link never said down while connecting: ${backend.logs}`,
    );
    const { state } = backend;
    await waitFor(() => !state.status().isDegraded, 5_000, `backend ${index} shared (${state.status().detail})`);
  }
});
