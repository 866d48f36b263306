// One master of a real 3-master Redis Cluster killed mid-run (test/helpers/redis-cluster.ts): only the providers whose
// hash tag sat on it are served from local state; the others keep sharing their budgets exactly through the masters
// that answer. One warning when a provider's slot stops answering, one line when it answers again (no flapping),
// status degraded meanwhile and naming the provider, and what was reserved locally is replayed once it is back.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../../test/helpers/redis-cluster.ts";
import { nodesOfTags, useClusterBackend } from "../../test/helpers/redis-cluster-state.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import { type BudgetScope, isReservation, rulesFromLimits } from "../limits/budgets.ts";

const skip = isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING;
const PROVIDERS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];
/** A short command timeout, as in production: a command to the dead master costs one, not 2 s. */
const TIMEOUT_MS = 200;

function scopesOf(provider: string, limits: Parameters<typeof rulesFromLimits>[0]): BudgetScope[] {
  return [
    { id: `provider:${provider}`, ...rulesFromLimits(limits), dayReset: UTC_MIDNIGHT },
    { id: `deployment:${provider}/m`, ...rulesFromLimits({ tpm: 1_000_000 }), dayReset: UTC_MIDNIGHT },
  ];
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

describe("a Redis Cluster master killed mid-run", { skip }, () => {
  test("only its providers go local, said once; status names them; back after a restart, said once, replayed", async (t) => {
    const cluster = await useRedisCluster(t);
    const nodes = await nodesOfTags(t, cluster, PROVIDERS);
    const victim = nodes.get("alpha");
    const live = PROVIDERS.find((provider) => nodes.get(provider) !== victim);
    assert.ok(victim !== undefined && live !== undefined);
    const first = await useClusterBackend(t, cluster, "slots:", TIMEOUT_MS);
    const second = await useClusterBackend(t, cluster, "slots:", TIMEOUT_MS);
    const alpha = scopesOf("alpha", { rpm: 1_000 });
    const other = scopesOf(live, { rpm: 100_000 });
    await victim.kill();
    // Eight seconds of traffic: a request on a live master's provider every 100 ms, one on alpha every 500 ms.
    const startMs = Date.now();
    let alphaAdmitted = 0;
    for (let round = 0; Date.now() - startMs < 8_000; round++) {
      const nowMs = Date.now();
      const reserved = await first.state.ledger.reserve(other, { tokens: 10 }, nowMs);
      assert.ok(isReservation(reserved), `round ${round}: ${live} reserved`);
      if (round % 5 === 0) {
        const onAlpha = await first.state.ledger.reserve(alpha, { tokens: 10 }, nowMs);
        assert.ok(isReservation(onAlpha), `round ${round}: alpha reserved (locally)`);
        alphaAdmitted += 1;
      }
      await sleep(100);
    }
    const warnings = first.logs.filter((line) => line.startsWith("warn:"));
    assert.equal(warnings.filter((line) => /alpha/.test(line)).length, 1, `one warning for alpha: ${warnings}`);
    assert.deepEqual(
      first.logs.filter((line) => /Redis is unreachable|reachable again/.test(line)),
      [],
      "the link itself never went down",
    );
    const degraded = first.state.status();
    assert.equal(degraded.isDegraded, true, degraded.detail);
    assert.match(degraded.detail, /1 provider .*alpha/);
    assert.doesNotMatch(degraded.detail, new RegExp(live));
    // The live master's provider was shared all along: the other process sees every one of those reserves.
    assert.equal(first.state.ledger.unsyncedCount, alphaAdmitted, "only alpha's reservations wait for a replay");

    await victim.restart();
    await waitFor(() => !first.state.status().isDegraded, 20_000, `alpha back (${first.state.status().detail})`);
    assert.equal(first.logs.filter((line) => /^info: .*alpha/.test(line)).length, 1, `one line: ${first.logs}`);
    // A replay that fails (its script past the command timeout on a loaded machine) is tried again by the ledger's
    // renewal tick, every 10 s (a third of the lease TTL): 5 s here failed under load.
    await waitFor(() => first.state.ledger.unsyncedCount === 0, 20_000, "alpha's local reservations replayed");
    // The restarted master holds the replayed reservations: with a limit of those plus two, the second process may
    // add two, not three.
    await waitFor(() => !second.state.status().isDegraded, 20_000, "alpha back on the second process");
    const nowMs = Date.now();
    const tight = scopesOf("alpha", { rpm: alphaAdmitted + 2 });
    assert.ok(isReservation(await second.state.ledger.reserve(tight, { tokens: 10 }, nowMs)));
    assert.ok(isReservation(await second.state.ledger.reserve(tight, { tokens: 10 }, nowMs)));
    const refused = await second.state.ledger.reserve(tight, { tokens: 10 }, nowMs);
    assert.ok(!isReservation(refused), "the replayed reservations count in the restarted master");
    assert.equal(first.logs.filter((line) => /alpha/.test(line)).length, 2, `two lines in all: ${first.logs}`);
  });

  test("two replicas, a provider on a live master with rpm: N: exactly N of N + k admitted while another master is dead", async (t) => {
    const cluster = await useRedisCluster(t);
    const nodes = await nodesOfTags(t, cluster, PROVIDERS);
    const victim = nodes.get("alpha");
    const live = PROVIDERS.find((provider) => nodes.get(provider) !== victim);
    assert.ok(victim !== undefined && live !== undefined);
    const replicas = [
      await useClusterBackend(t, cluster, "exact:", TIMEOUT_MS),
      await useClusterBackend(t, cluster, "exact:", TIMEOUT_MS),
    ];
    const limit = 10;
    const other = scopesOf(live, { rpm: limit });
    const alpha = scopesOf("alpha", { rpm: 1_000 });
    await victim.kill();
    let admitted = 0;
    const startMs = Date.now();
    for (let request = 0; request < limit + 8; request++) {
      // Between them, requests on the dead master's provider (each falls back to local state, never fails).
      for (const { state } of replicas) {
        for (let onAlpha = 0; onAlpha < 2; onAlpha++) {
          assert.ok(isReservation(await state.ledger.reserve(alpha, { tokens: 10 }, startMs + request)));
        }
      }
      const replica = replicas[request % 2] ?? replicas[0];
      const result = await replica?.state.ledger.reserve(other, { tokens: 10 }, startMs + request);
      if (result !== undefined && isReservation(result)) admitted += 1;
      await sleep(150);
    }
    assert.equal(admitted, limit, `${live} on a live master: exactly its rpm across both replicas`);
    for (const { state } of replicas) assert.match(state.status().detail, /alpha/);
  });
});

describe("a Redis Cluster with every master killed", { skip }, () => {
  test("the whole link goes down (not each provider on its own), and requests no longer wait on it", async (t) => {
    const cluster = await useRedisCluster(t);
    const { state, logs } = await useClusterBackend(t, cluster, "all-dead:", TIMEOUT_MS);
    const alpha = scopesOf("alpha", { rpm: 1_000 });
    assert.ok(isReservation(await state.ledger.reserve(alpha, { tokens: 10 }, Date.now())));
    await Promise.all(cluster.nodes.map((node) => node.kill()));
    const startMs = Date.now();
    while (Date.now() - startMs < 3_000) {
      assert.ok(isReservation(await state.ledger.reserve(alpha, { tokens: 10 }, Date.now())), "served locally");
      await sleep(100);
    }
    await waitFor(() => !/^shared through/.test(state.status().detail), 5_000, `the link down: ${logs}`);
    assert.equal(state.status().isDegraded, true);
    assert.ok(
      logs.some((line) => /Redis is unreachable/.test(line)),
      logs.join("\n"),
    );
    const beforeMs = Date.now();
    await state.ledger.reserve(scopesOf("beta", { rpm: 1_000 }), { tokens: 10 }, Date.now());
    assert.ok(Date.now() - beforeMs < 50, "a provider never seen failing does not wait on the dead cluster");
  });
});
