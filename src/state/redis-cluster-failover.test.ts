// A Redis Cluster master that hangs (SIGSTOP, or a network partition: its connections stay open, nothing answers)
// with a replica that takes its slots over. The cluster connection learns of a slot's new master only from a MOVED
// reply or a closed connection, and a hung master gives neither: before 2026-12-07's review, its providers went local
// after three timeouts and stayed local for as long as it hung, every probe sent to the old address (ioredis's stale
// slot table) and timing out, though the promoted replica answered for their slots.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../../test/helpers/redis-cluster.ts";
import { nodesOfTags, useClusterBackend } from "../../test/helpers/redis-cluster-state.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import { type BudgetScope, isReservation, rulesFromLimits } from "../limits/budgets.ts";

const skip = isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING;
const TIMEOUT_MS = 200;

function scopesOf(provider: string, rpm = 10): BudgetScope[] {
  return [{ id: `provider:${provider}`, ...rulesFromLimits({ rpm }), dayReset: UTC_MIDNIGHT }];
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await sleep(100);
  }
}

describe("a Redis Cluster master hung, its replica promoted", { skip }, () => {
  test("its providers are shared again on the promoted replica, not local for as long as the old master hangs", async (t) => {
    const cluster = await useRedisCluster(t);
    const victim = (await nodesOfTags(t, cluster, ["alpha"])).get("alpha");
    assert.ok(victim !== undefined);
    const replicaPort = await cluster.addReplica(victim);
    const { state } = await useClusterBackend(t, cluster, "failover:", TIMEOUT_MS);
    assert.ok(isReservation(await state.ledger.reserve(scopesOf("alpha"), { tokens: 0 }, Date.now())));
    assert.equal(state.status().isDegraded, false);
    victim.pause();
    // Three reserves wait one command timeout each: alpha's master is down, its budgets local.
    for (let request = 0; request < 3; request++) {
      assert.ok(isReservation(await state.ledger.reserve(scopesOf("alpha"), { tokens: 0 }, Date.now())));
    }
    assert.match(state.status().detail, /alpha/, "alpha served locally");
    // The replica takes the hung master's slots (cluster-node-timeout 1 s, then its election).
    const role = () =>
      spawnSync("redis-cli", ["-p", String(replicaPort), "role"], { encoding: "utf8", timeout: 5_000 }).stdout;
    await waitFor(
      () => role().startsWith("master"),
      20_000,
      () => "the replica promoted",
    );
    // Probes once a second, three answered in a row: shared again within a few seconds of the promotion.
    await waitFor(
      () => !state.status().isDegraded,
      10_000,
      () => `alpha shared again (${state.status().detail})`,
    );
    // And its reservations made locally meanwhile reach the new master.
    await waitFor(
      () => state.ledger.unsyncedCount === 0,
      5_000,
      () => `replayed (${state.ledger.unsyncedCount})`,
    );
  });

  test("/health stops naming its providers local as soon as their slots answer on the promoted replica", async (t) => {
    const cluster = await useRedisCluster(t);
    const victim = (await nodesOfTags(t, cluster, ["alpha"])).get("alpha");
    assert.ok(victim !== undefined);
    const replicaPort = await cluster.addReplica(victim);
    const { state } = await useClusterBackend(t, cluster, "failover-health:", TIMEOUT_MS);
    // 250 a minute: no budget lease (below 256), each reserve asks Redis or (its master down) the local book.
    const scopes = scopesOf("alpha", 250);
    assert.ok(isReservation(await state.ledger.reserve(scopes, { tokens: 0 }, Date.now())));
    victim.pause();
    for (let request = 0; request < 3; request++) {
      assert.ok(isReservation(await state.ledger.reserve(scopes, { tokens: 0 }, Date.now())));
    }
    assert.deepEqual(state.status().localProviders, ["alpha"]);
    // Until /health says alpha is shared: a reserve that went to Redis (nothing more left to replay) while /health
    // still names alpha local is /health behind the state. Before, the old master's group stayed down until three
    // probes in a row answered (~3 s), though alpha's slot answered on the promoted replica and its reserves went there.
    const behind: number[] = [];
    const startedMs = Date.now();
    while (state.status().localProviders?.includes("alpha") === true) {
      assert.ok(Date.now() - startedMs < 20_000, `alpha shared again (${state.status().detail})`);
      const unsynced = state.ledger.unsyncedCountOf("provider:alpha");
      assert.ok(isReservation(await state.ledger.reserve(scopes, { tokens: 0 }, Date.now())));
      const wentToRedis = state.ledger.unsyncedCountOf("provider:alpha") <= unsynced;
      if (wentToRedis && state.status().localProviders?.includes("alpha") === true) behind.push(Date.now());
      await sleep(100);
    }
    const spanMs = behind.length === 0 ? 0 : (behind.at(-1) ?? 0) - (behind[0] ?? 0);
    assert.equal(behind.length, 0, `/health named alpha local for ${spanMs} ms while its reserves went to Redis`);
    const role = spawnSync("redis-cli", ["-p", String(replicaPort), "role"], { encoding: "utf8", timeout: 5_000 });
    assert.match(role.stdout, /^master/, "the replica promoted");
  });
});
