// A Redis Cluster master that comes back empty (killed and restarted without persistence) while the data epoch, on
// another master, says nothing: its sentinel (redis-master-epochs.ts) is gone, and the process handles it as a loss
// of all of Redis's data. Before, a refused feature stored there was never written again (and a load replacing the
// process's lessons by what is stored dropped it), and a give-back kept for the master's return lowered the new
// counters, which counted newer charges.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import {
  isRedisClusterAvailable,
  REDIS_CLUSTER_MISSING,
  type RedisClusterNode,
} from "../../test/helpers/redis-cluster.ts";
import { minuteTotals, scopeOf, takenDown, useClusterScene, waitFor } from "../../test/helpers/redis-cluster-state.ts";
import { isReservation } from "../limits/budgets.ts";
import { RefusedFeatures } from "../limits/refused-features.ts";
import { refusedFeaturesKey, scopeKeys } from "./redis-keys.ts";

const skip = isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING;
const HOUR_MS = 3_600_000;

/** A field of a hash, read on the node that serves it (a direct connection: no cluster ready check). */
async function fieldOn(t: TestContext, node: RedisClusterNode, key: string, field: string) {
  const client = new Redis({ host: "127.0.0.1", port: node.port, lazyConnect: true });
  t.after(() => client.disconnect());
  await client.connect();
  const value = await client.hget(key, field);
  client.disconnect();
  return value;
}

describe("a Redis Cluster master restarted empty, the data epoch on another", { skip }, () => {
  test("the refused features this process holds for deployments on it are written there again", async (t) => {
    const prefix = "master-lost:";
    const refused = new RefusedFeatures(HOUR_MS);
    const { away, state } = await useClusterScene(t, prefix, { refusedFeatures: refused });
    const { name, node } = away;
    const key = refusedFeaturesKey(prefix, `${name}/m`);
    refused.learn(`${name}/m`, "tools", "HTTP 400: tools", Date.now());
    let stored: string | null = null;
    for (const until = Date.now() + 5_000; stored === null && Date.now() < until; await sleep(100)) {
      stored = await fieldOn(t, node, key, "tools");
    }
    assert.ok(stored !== null, "the lesson stored on its master");
    await node.kill();
    await takenDown(state.ledger, () => state.status(), name);
    await node.restart();
    await waitFor(() => !state.status().isDegraded, 20_000, `${name} back (${state.status().detail})`);
    stored = null;
    for (const until = Date.now() + 5_000; stored === null && Date.now() < until; await sleep(100)) {
      stored = await fieldOn(t, node, key, "tools");
    }
    assert.ok(stored !== null, "the lesson written again on the master that came back empty");
    assert.ok(
      refused.lessons().some(([deployment]) => deployment === `${name}/m`),
      "still held",
    );
  });
});

describe("a Redis Cluster master restarted empty while a give-back waits for it", { skip }, () => {
  test("the give-back is left out: the new day counter keeps the charges replayed into it", async (t) => {
    const prefix = "master-lost-giveback:";
    const { away, state } = await useClusterScene(t, prefix);
    const { name, node } = away;
    const pool = scopeOf(`provider:${name}`, { rpd: 1_000 });
    // 1000 / 64: a lease of 15 requests beside this one, counted in the day's counter now.
    assert.ok(isReservation(await state.ledger.reserve([pool], { tokens: 0 }, Date.now())));
    assert.equal(state.ledger.leaseCount, 1);
    await node.kill();
    await takenDown(state.ledger, () => state.status(), name);
    // The lease's 15 unused requests: a give-back kept for the master's return.
    await state.ledger.returnLeases();
    // Three requests of the pool served locally meanwhile: replayed into the master when it is back.
    const deployment = scopeOf(`deployment:${name}/m`, {});
    for (let request = 0; request < 3; request++) {
      assert.ok(isReservation(await state.ledger.reserve([pool, deployment], { tokens: 0 }, Date.now())));
    }
    await node.restart();
    await waitFor(() => !state.status().isDegraded, 20_000, `${name} back (${state.status().detail})`);
    await waitFor(() => state.ledger.unsyncedCount === 0, 5_000, "the local reserves replayed");
    await waitFor(() => state.ledger.keptWriteCount === 0, 5_000, "nothing kept");
    await sleep(500);
    const now = new Date();
    const dayStartMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    const { day } = scopeKeys(prefix, pool.id, { dayStartMs, monthStartMs: 0 });
    const requests = await fieldOn(t, node, day, "requests");
    assert.equal(requests, "3", "the three replayed requests (the old counter's give-back freed them before)");
  });
});

describe("a Redis Cluster master loses its data while a charge waits for another master's return", { skip }, () => {
  test("the charge is still sent into its own master, which kept its data", async (t) => {
    const prefix = "master-lost-other:";
    const { cluster, epochNode, away, state } = await useClusterScene(t, prefix);
    const { name, node } = away;
    const lost = cluster.nodes.find((each) => each !== node && each !== epochNode);
    assert.ok(lost !== undefined, "a third master");
    const scopes = [scopeOf(`provider:${name}`, { tpm: 1_000 }), scopeOf(`deployment:${name}/m`, { rpm: 100 })];
    const reserved = await state.ledger.reserve(scopes, { tokens: 500 }, Date.now());
    assert.ok(isReservation(reserved));
    node.pause();
    await takenDown(state.ledger, () => state.status(), name);
    // 900 tokens: a charge of 400 kept for the hung master's return.
    state.ledger.reconcile(reserved, 900, Date.now());
    await waitFor(() => state.ledger.keptWriteCount === 1, 5_000, "the charge kept");
    // Meanwhile the third master loses its data (restarted empty): its sentinel is gone.
    const flushed = new Redis({ host: "127.0.0.1", port: lost.port, lazyConnect: true });
    t.after(() => flushed.disconnect());
    await flushed.connect();
    await flushed.flushall();
    flushed.disconnect();
    await node.resume();
    await waitFor(() => !state.status().isDegraded, 20_000, `${name} back (${state.status().detail})`);
    await waitFor(() => state.ledger.keptWriteCount === 0, 5_000, "the kept charge replayed");
    await sleep(500);
    const totals = await minuteTotals(t, cluster, prefix, `provider:${name}`, node);
    assert.equal(totals.tokens, 900, "the charge counted on its master, which lost nothing");
  });
});
