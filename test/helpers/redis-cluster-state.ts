// A gateway process's Redis state backend on a test's Redis Cluster (test/helpers/redis-cluster.ts), with every line
// it logs kept (level and message), and where a hash tag's slot lives: for the tests of a master lost mid-run.
import type { TestContext } from "node:test";
import { Cluster } from "ioredis";
import { systemClock } from "../../src/clock.ts";
import { buildConfig } from "../../src/config/load.ts";
import { AvailabilityBook } from "../../src/limits/availability.ts";
import { createRedisStateBackend, type RedisStateOptions } from "../../src/state/redis-state.ts";
import { closeWhenTestEnds } from "./late-start.ts";
import type { RedisCluster, RedisClusterNode } from "./redis-cluster.ts";

const COOLDOWN_DEFAULTS = buildConfig({}, undefined, { env: {} }).config.cooldowns;

/** A backend on `cluster` under `prefix`; `logs` holds `warn: message` / `info: message`, in order. */
export async function useClusterBackend(
  t: TestContext,
  cluster: RedisCluster,
  prefix: string,
  commandTimeoutMs: number,
  options: RedisStateOptions = {},
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
      redisUrl: cluster.url,
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
