// Scenes of the e2e tests where what a gateway keeps must outlive it or reach another one: two replicas on one
// Redis, a restart on the embedded state file, and Redis's own count of the MGET look-ups made (a shared read made
// or spared). Shared by the tests of what a tool loop's next turn gets back (thought-signatures.test.ts,
// openrouter-reasoning-details.test.ts). Each scene's YAML is the caller's, given the `state:` section to put in it.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { Redis } from "ioredis";
import { useGateway } from "./e2e.ts";
import { startTestGateway, type TestGateway } from "./gateway.ts";
import { closeWhenTestEnds } from "./late-start.ts";
import type { MockUpstream } from "./mock-upstream.ts";
import { type RedisServer, useRedisServer } from "./redis-server.ts";

/** The caller's config around a `state:` section (YAML, ending with a newline). */
export type YamlWithState = (state: string) => string;

/**
 * A `state:` section shared through Redis at `url` under `prefix`: in memory unless `path` names a state file
 * (each replica its own), on a Redis Cluster with `isCluster`.
 */
export function redisStateYaml(
  url: string,
  prefix: string,
  options: { readonly path?: string; readonly isCluster?: boolean } = {},
): string {
  const path = options.path === undefined ? '":memory:"' : JSON.stringify(options.path);
  // On a Cluster, a 2 s command timeout (as in redis-cluster.test.ts): ioredis's ready check (CLUSTER INFO) past the
  // default 200 ms on a loaded machine leaves the gateway on local state, and the test failing by timing.
  const cluster = options.isCluster === true ? "  redis_cluster: true\n  redis_command_timeout_ms: 2000\n" : "";
  return `state:\n  path: ${path}\n  redis_url: ${url}\n${cluster}  redis_key_prefix: "${prefix}"\n`;
}

/** A state file of its own in a new temp directory (`name` starts the directory's name). */
export function stateFilePath(name: string): string {
  return join(mkdtempSync(join(tmpdir(), `${name}-`)), "state.db");
}

/** A new Redis and two gateways (replicas `a` and `b`) sharing it under `prefix`, all closed when the test ends. */
export async function twoReplicas(
  t: TestContext,
  yamlWith: YamlWithState,
  prefix: string,
): Promise<{ redis: RedisServer; a: TestGateway; b: TestGateway }> {
  const redis = await useRedisServer(t);
  const yaml = yamlWith(redisStateYaml(redis.url, prefix));
  return { redis, a: await useGateway(t, yaml), b: await useGateway(t, yaml) };
}

/**
 * An admin connection to the Redis at `url` (closed when the test ends), and `mgetCalls()`: how many MGETs Redis
 * has run so far, from its own command statistics, to tell whether a request made a shared look-up.
 */
export async function redisLookUps(
  t: TestContext,
  url: string,
): Promise<{ admin: Redis; mgetCalls(): Promise<number> }> {
  const admin = new Redis(url, { lazyConnect: true });
  // disconnect, not quit: a QUIT queued for a Redis already stopped (its cleanup may run first) waits for ever.
  await closeWhenTestEnds(t, () => admin.disconnect());
  await admin.connect();
  return {
    admin,
    mgetCalls: async () => {
      const stats = String(await admin.call("INFO", "commandstats"));
      return Number(/cmdstat_mget:calls=(\d+)/.exec(stats)?.[1] ?? 0);
    },
  };
}

/**
 * A gateway on a state file of its own runs `firstTurn`, is closed (a deploy, a restart), and a new one starts on
 * the same file: returns that one (closed when the test ends) and what `firstTurn` returned.
 */
export async function restartedBetween<T>(
  t: TestContext,
  yamlWith: YamlWithState,
  firstTurn: (before: TestGateway) => Promise<T>,
): Promise<{ after: TestGateway; first: T }> {
  const yaml = yamlWith(`state:\n  path: ${JSON.stringify(stateFilePath("llm-gateway-restart"))}\n`);
  const before = await startTestGateway(yaml);
  let isClosed = false;
  await closeWhenTestEnds(t, () => (isClosed ? undefined : before.close()));
  const first = await firstTurn(before);
  await before.close();
  isClosed = true;
  return { after: await useGateway(t, yaml), first };
}

/**
 * Providers `other` (model `o`, free, so planned first when asked for) and the preset `preset` at `mock` serving
 * `m` as `modelId`, with `state`: the next turn served by another provider first, and by the preset on a failover.
 */
export function otherFirstYaml(
  other: MockUpstream,
  preset: { readonly name: string; readonly mock: MockUpstream; readonly apiKey: string; readonly modelId: string },
  state: string,
): string {
  return `providers:
  - name: other
    base_url: ${other.baseUrl}
    api_key: o-test
    cost: free
    retries: 0
    models:
      o: { id: vendor/m-instruct }
  - preset: ${preset.name}
    base_url: ${preset.mock.baseUrl}
    api_key: ${preset.apiKey}
    retries: 0
    models:
      m: { id: ${preset.modelId} }
${state}`;
}
