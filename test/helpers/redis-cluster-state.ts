// A gateway process's Redis state backend on a test's Redis Cluster (test/helpers/redis-cluster.ts), with every line
// it logs kept (level and message), and where a hash tag's slot lives: for the tests of a master lost mid-run.
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Cluster, Redis } from "ioredis";
import { systemClock } from "../../src/clock.ts";
import { UTC_MIDNIGHT } from "../../src/config/day-reset.ts";
import { buildConfig } from "../../src/config/load.ts";
import { AvailabilityBook } from "../../src/limits/availability.ts";
import { type BudgetScope, isReservation, rulesFromLimits } from "../../src/limits/budgets.ts";
import { scopeKeys } from "../../src/state/redis-keys.ts";
import type { RedisLedger } from "../../src/state/redis-ledger.ts";
import { createRedisStateBackend, type RedisStateOptions } from "../../src/state/redis-state.ts";
import { closeWhenTestEnds } from "./late-start.ts";
import { type RedisCluster, type RedisClusterNode, useRedisCluster } from "./redis-cluster.ts";

const COOLDOWN_DEFAULTS = buildConfig({}, undefined, { env: {} }).config.cooldowns;

/**
 * A backend on `cluster` under `prefix`; `logs` holds `warn: message` / `info: message`, in order. `seedUrl`: the node
 * it connects to first (its subscriber's node), the cluster's first by default.
 */
export async function useClusterBackend(
  t: TestContext,
  cluster: RedisCluster,
  prefix: string,
  commandTimeoutMs: number,
  options: RedisStateOptions = {},
  seedUrl = cluster.url,
) {
  const availability = new AvailabilityBook(systemClock, COOLDOWN_DEFAULTS);
  const logs: string[] = [];
  const logger = {
    info: (_object: object, message: string) => logs.push(`info: ${message}`),
    warn: (_object: object, message: string) => logs.push(`warn: ${message}`),
  };
  const state = await createRedisStateBackend(
    {
      path: "",
      redisUrl: seedUrl,
      redisKeyPrefix: prefix,
      redisCluster: true,
      flushIntervalMs: 1_000,
      redisCommandTimeoutMs: commandTimeoutMs,
    },
    availability,
    systemClock,
    logger,
    options,
  );
  await closeWhenTestEnds(t, () => state.close());
  return { state, availability, logs };
}

/** Which node holds each name's hash tag (`{name}`), asked of the cluster itself (CLUSTER KEYSLOT). */
export async function nodesOfTags(
  t: TestContext,
  cluster: RedisCluster,
  names: readonly string[],
): Promise<Map<string, RedisClusterNode>> {
  const client = new Cluster([{ host: "127.0.0.1", port: cluster.nodes[0]?.port ?? 0 }], { lazyConnect: true });
  await closeWhenTestEnds(t, () => client.disconnect());
  await client.connect();
  const nodes = new Map<string, RedisClusterNode>();
  for (const name of names) nodes.set(name, cluster.nodeOfSlot(Number(await client.cluster("KEYSLOT", `{${name}}`))));
  client.disconnect();
  return nodes;
}

/** A budget scope with `limits`, its day starting at UTC midnight. */
export function scopeOf(id: string, limits: Parameters<typeof rulesFromLimits>[0]): BudgetScope {
  return { id, ...rulesFromLimits(limits), dayReset: UTC_MIDNIGHT };
}

export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * The minute window's totals Redis holds for a scope (`r` requests, `t` tokens), read on its node. `owner`: the node
 * serving the scope's slot, read directly: a Cluster connection's ready check asks a node at random, and one that hangs
 * (paused) would hold it for good.
 */
export async function minuteTotals(
  t: TestContext,
  cluster: RedisCluster,
  prefix: string,
  scopeId: string,
  owner?: RedisClusterNode,
) {
  const client =
    owner === undefined
      ? new Cluster([{ host: "127.0.0.1", port: cluster.nodes[0]?.port ?? 0 }], { lazyConnect: true })
      : new Redis({ host: "127.0.0.1", port: owner.port, lazyConnect: true });
  t.after(() => client.disconnect());
  await client.connect();
  const [, hash] = scopeKeys(prefix, scopeId, { dayStartMs: 0, monthStartMs: 0 }).sliding[1] ?? [];
  const totals = await client.hmget(hash ?? "", "r", "t");
  client.disconnect();
  return { requests: Number(totals[0] ?? 0), tokens: Number(totals[1] ?? 0) };
}

const PROVIDER_NAMES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];

/** A provider name whose hash tag sits on another node than `avoid` (tried in order). */
export async function providerAwayFrom(t: TestContext, cluster: RedisCluster, avoid: RedisClusterNode) {
  return awayFrom(await nodesOfTags(t, cluster, PROVIDER_NAMES), avoid);
}

function awayFrom(nodes: ReadonlyMap<string, RedisClusterNode>, avoid: RedisClusterNode) {
  const name = PROVIDER_NAMES.find((candidate) => nodes.get(candidate) !== avoid);
  const node = name === undefined ? undefined : nodes.get(name);
  assert.ok(name !== undefined && node !== undefined, "a provider on another master");
  return { name, node };
}

/** The command timeout of `useClusterScene`'s backend: short, so that a hung master is found down in a second. */
export const SCENE_COMMAND_TIMEOUT_MS = 200;

/**
 * The scene of the tests of a lost or hung master: a test's own Redis Cluster and one backend on it under `prefix`
 * (`useClusterBackend`, SCENE_COMMAND_TIMEOUT_MS), with the masters they pick: `alpha`, the one serving the provider
 * alpha's hash tag; `epochNode`, the data epoch's (its key has no hash tag: the slot of the whole key, under
 * `prefix`); `away`, the first provider (alpha, beta, ...) whose hash tag is served by another master than the
 * epoch's. The masters are asked before the backend starts, as the tests did.
 */
export async function useClusterScene(t: TestContext, prefix: string, options: RedisStateOptions = {}) {
  const cluster = await useRedisCluster(t);
  const epochKey = `${prefix}data-epoch`;
  const nodes = await nodesOfTags(t, cluster, [...PROVIDER_NAMES, epochKey]);
  const alpha = nodes.get("alpha");
  const epochNode = nodes.get(epochKey);
  assert.ok(alpha !== undefined && epochNode !== undefined);
  const away = awayFrom(nodes, epochNode);
  const backend = await useClusterBackend(t, cluster, prefix, SCENE_COMMAND_TIMEOUT_MS, options);
  return { cluster, alpha, epochNode, away, ...backend };
}

/**
 * Takes `provider`'s master down in the ledger's eyes while it hangs or is dead: three reserves of another of its
 * deployments (rpm 10: below a lease, each asks Redis) fail there, each served locally (replayed later), and the
 * third makes its providers local. Asserts they are: `provider` alone.
 */
export async function takenDown(
  ledger: RedisLedger,
  status: () => { localProviders?: readonly string[]; detail: string },
  provider: string,
): Promise<void> {
  const other = [scopeOf(`deployment:${provider}/other`, { rpm: 10 })];
  for (let request = 0; request < 3; request++) {
    assert.ok(isReservation(await ledger.reserve(other, { tokens: 0 }, Date.now())));
  }
  assert.deepEqual(status().localProviders, [provider], `${provider} served locally (${status().detail})`);
}

/**
 * `minuteTotals` read again (every 100 ms, for `timeoutMs`) until `isDone` says they are what the test waits for (a
 * replayed or resent batch lands in its own time); the last ones read, for the test to assert.
 */
export async function minuteTotalsWhen(
  t: TestContext,
  scene: { cluster: RedisCluster; prefix: string; scopeId: string; owner?: RedisClusterNode },
  isDone: (totals: { requests: number; tokens: number }) => boolean,
  timeoutMs = 5_000,
) {
  const read = () => minuteTotals(t, scene.cluster, scene.prefix, scene.scopeId, scene.owner);
  let totals = await read();
  for (const until = Date.now() + timeoutMs; !isDone(totals) && Date.now() < until; totals = await read()) {
    await sleep(100);
  }
  return totals;
}
