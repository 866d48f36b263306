// A gateway whose Redis Cluster is not serving when it starts (`cluster_state:fail`, as a node answering slowly under
// load or a lost majority makes it) still starts, from local state, and ioredis keeps reconnecting in the background.
// ioredis's Cluster#connect() never settles when its ready check fails (it reconnects with a new promise), and every
// store awaited it at start: the start waited for ever (test/e2e/batches-redis.test.ts's cluster test hung so).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { echoing, providersYaml } from "../helpers/batches-scene.ts";
import { useGateway, useMock } from "../helpers/e2e.ts";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../helpers/redis-cluster.ts";

/**
 * Within this a start must be done and /health answer: the stores wait for their connections at once, so a cluster
 * that is not ready costs one START_READY_WAIT_MS (5 s), with room for a loaded machine; in turn, each store waiting
 * its own 5 s, it took ~15 s.
 */
const START_LIMIT_MS = 8_000;
/** How long the race waits for a start that is too slow before failing the test (it is then closed by its cleanup). */
const START_GIVE_UP_MS = 30_000;

test("a Redis Cluster in cluster_state:fail at start: the gateway starts anyway and answers", {
  skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING,
}, async (t) => {
  const mock = await useMock(t);
  echoing(mock);
  const cluster = await useRedisCluster(t);
  const [seed, ...others] = cluster.nodes;
  assert.ok(seed !== undefined);
  // The seed alone is a minority: once it has marked the others failed (cluster-node-timeout 1 s) it reports fail.
  for (const node of others) await node.kill();
  const deadlineMs = Date.now() + 15_000;
  for (;;) {
    const info = spawnSync("redis-cli", ["-p", String(seed.port), "cluster", "info"], { encoding: "utf8" });
    if (info.stdout.includes("cluster_state:fail")) break;
    assert.ok(Date.now() < deadlineMs, `the seed never reported cluster_state:fail: ${info.stdout}`);
    await sleep(100);
  }
  const yaml = `${providersYaml(mock)}state:
  path: ":memory:"
  redis_url: ${cluster.url}
  redis_cluster: true
  redis_key_prefix: "cluster-start-e2e:"
`;
  let timer: NodeJS.Timeout | undefined;
  const startedAtMs = Date.now();
  const started = await Promise.race([
    useGateway(t, yaml),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), START_GIVE_UP_MS);
    }),
  ]);
  clearTimeout(timer);
  assert.ok(started !== undefined, `the gateway did not start within ${START_GIVE_UP_MS} ms`);
  const health = await fetch(`${started.url}/health`);
  assert.equal(health.status, 200);
  const tookMs = Date.now() - startedAtMs;
  assert.ok(
    tookMs < START_LIMIT_MS,
    `/health answered ${tookMs} ms after the start began (limit ${START_LIMIT_MS} ms)`,
  );
  // A chat request is served from local state while the shared state is away.
  const chat = await fetch(`${started.baseUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }),
  });
  assert.equal(chat.status, 200);
});
