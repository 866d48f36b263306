// A cooldown's broadcast on a Redis Cluster with replicas: the script that stores a cooldown PUBLISHes it on the
// master of the cooldown key's slot, and a (non-sharded) PUBLISH is relayed over the cluster bus to every node,
// replicas of other masters included, so a process whose subscriber sits on a replica of another master hears it;
// and still does once the key's master is killed and its replica promoted, and once the subscriber's own node is
// promoted. (A sharded SPUBLISH would reach the key's shard alone: not what a fleet-wide cooldown needs.)
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import {
  isRedisClusterAvailable,
  REDIS_CLUSTER_MISSING,
  type RedisCluster,
  type RedisClusterNode,
  useRedisCluster,
} from "../../test/helpers/redis-cluster.ts";
import { useClusterBackend, waitFor } from "../../test/helpers/redis-cluster-state.ts";
import type { AvailabilityBook } from "../limits/availability.ts";
import { hashSlot } from "./redis-hash-slot.ts";
import { cooldownKey } from "./redis-keys.ts";

const skip = isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING;
const PREFIX = "broadcast:";
const TIMEOUT_MS = 500;

/** Deployments (`dN/m`) whose cooldown key lives on `master`, `count` of them. */
function deploymentsOn(cluster: RedisCluster, master: RedisClusterNode, count: number): string[] {
  const found: string[] = [];
  for (let index = 0; found.length < count; index++) {
    const deployment = `d${index}/m`;
    if (cluster.nodeOfSlot(hashSlot(cooldownKey(PREFIX, "deployment", deployment))) === master) found.push(deployment);
  }
  return found;
}

/** Resolves once the node on `port` reports itself a master (a replica promoted after its master died). */
async function promoted(port: number): Promise<void> {
  const client = new Redis({ host: "127.0.0.1", port, lazyConnect: true });
  await client.connect();
  try {
    const deadline = Date.now() + 15_000;
    while (((await client.role()) as [string])[0] !== "master") {
      assert.ok(Date.now() < deadline, `the replica on ${port} was not promoted`);
      await sleep(100);
    }
  } finally {
    client.disconnect();
  }
}

async function coolAndHear(from: AvailabilityBook, to: AvailabilityBook, deployment: string, what: string) {
  from.recordRateLimited(deployment, { delayMs: 120_000 }, "rate_limited", "HTTP 429");
  // Generous: a store that fails while a master is being replaced is sent again on its backoff.
  await waitFor(() => !to.peek(deployment, deployment.split("/")[0] ?? "").isAvailable, 10_000, what);
}

describe("a cooldown's broadcast on a Redis Cluster with replicas", { skip }, () => {
  test("reaches a subscriber on a replica of another master, before and after its key's master fails over", async (t) => {
    const cluster = await useRedisCluster(t);
    const [keyMaster, listenerMaster] = cluster.nodes as [RedisClusterNode, RedisClusterNode];
    const [before, afterFailover] = deploymentsOn(cluster, keyMaster, 2) as [string, string];
    const keyReplica = await cluster.addReplica(keyMaster);
    const listenerReplica = await cluster.addReplica(listenerMaster);
    const publisher = await useClusterBackend(t, cluster, PREFIX, TIMEOUT_MS);
    // Its subscriber goes to its seed first: the replica of a master that holds none of those cooldown keys.
    const listener = await useClusterBackend(
      t,
      cluster,
      PREFIX,
      TIMEOUT_MS,
      {},
      `redis://127.0.0.1:${listenerReplica}`,
    );
    await coolAndHear(publisher.availability, listener.availability, before, "heard on another master's replica");

    await keyMaster.kill();
    await promoted(keyReplica);
    await coolAndHear(
      publisher.availability,
      listener.availability,
      afterFailover,
      "heard once the key's master was replaced by its replica",
    );
  });
});
