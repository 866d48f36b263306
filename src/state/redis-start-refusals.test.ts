// Start-up against a Redis that refuses the gateway: a wrong password, none given where one is required, nothing
// listening. Since 26c54706 the start ignores a connection's 'error' while connecting (a Cluster's slot map read past
// the command timeout is not an outage) and waits past a Cluster's failed first attempt: the reason the start gives
// must still be the refusal itself, and a refused password (no later attempt can succeed) must not cost the 5 s wait.
import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { Redis } from "ioredis";
import { closeWhenTestEnds } from "../../test/helpers/late-start.ts";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../../test/helpers/redis-cluster.ts";
import { waitFor } from "../../test/helpers/redis-cluster-state.ts";
import { freePort, isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { systemClock } from "../clock.ts";
import { buildConfig } from "../config/load.ts";
import { AvailabilityBook } from "../limits/availability.ts";
import { createRedisStateBackend } from "./redis-state.ts";

const COOLDOWN_DEFAULTS = buildConfig({}, undefined, { env: {} }).config.cooldowns;
/** Well under START_READY_WAIT_MS (5 s): a start that waited for it did not fail fast. */
const FAST_MS = 2_500;

/** A backend on `url`: how long its start took, the errors its warn lines gave, its status. */
async function startOn(t: TestContext, url: string, isCluster: boolean) {
  const warnings: string[] = [];
  const logger = {
    info: () => {},
    warn: (object: object, message: string) =>
      warnings.push(`${message}: ${"error" in object ? String(object.error) : ""}`),
  };
  const began = Date.now();
  const state = await createRedisStateBackend(
    {
      path: "",
      redisUrl: url,
      redisKeyPrefix: "refusals:",
      redisCluster: isCluster,
      flushIntervalMs: 1_000,
      redisCommandTimeoutMs: 200,
    },
    new AvailabilityBook(systemClock, COOLDOWN_DEFAULTS),
    systemClock,
    logger,
  );
  const tookMs = Date.now() - began;
  await closeWhenTestEnds(t, () => state.close());
  // Lines logged while starting are written a turn after the start (redis-state.ts, StartupLogger).
  await waitFor(() => warnings.length > 0, 1_000, "the start's warn line");
  return { state, tookMs, warnings };
}

async function requirePassword(port: number): Promise<void> {
  const admin = new Redis(port, { lazyConnect: true });
  await admin.connect();
  await admin.config("SET", "requirepass", "right");
  admin.disconnect();
}

test("a standalone Redis that refuses the password or the connection: the start says so, at once", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const server = await useRedisServer(t);
  await requirePassword(server.port);
  const cases = [
    { url: `redis://:wrong@127.0.0.1:${server.port}`, reason: /WRONGPASS/ },
    { url: server.url, reason: /NOAUTH/ },
    { url: `redis://127.0.0.1:${await freePort()}`, reason: /ECONNREFUSED/ },
  ];
  for (const { url, reason } of cases) {
    const { state, tookMs, warnings } = await startOn(t, url, false);
    assert.ok(tookMs < FAST_MS, `${url}: started degraded at once (${tookMs} ms)`);
    assert.equal(warnings.length, 1, `${url}: ${warnings}`);
    assert.match(warnings[0] ?? "", reason, `${url}: the warn line says why`);
    assert.match(state.status().detail, reason, `${url}: /health says why`);
  }
});

test("a Redis Cluster that refuses the password: the start fails fast and says so, /health too", {
  skip: isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING,
  timeout: 60_000,
}, async (t) => {
  const cluster = await useRedisCluster(t);
  for (const node of cluster.nodes) await requirePassword(node.port);
  const seed = cluster.nodes[0]?.port ?? 0;
  const cases = [
    { url: `redis://:wrong@127.0.0.1:${seed}`, reason: /WRONGPASS/ },
    { url: `redis://127.0.0.1:${seed}`, reason: /NOAUTH/ },
  ];
  for (const { url, reason } of cases) {
    const { state, tookMs, warnings } = await startOn(t, url, true);
    assert.ok(tookMs < FAST_MS, `${url}: no 5 s wait for a password no attempt can get past (${tookMs} ms)`);
    assert.match(warnings[0] ?? "", reason, `${url}: the warn line says why: ${warnings}`);
    // ioredis goes on trying in the background, each attempt's error reported (redis-link.ts): still the reason.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.match(state.status().detail, reason, `${url}: /health says why`);
  }
});
