// The writes kept for a Redis Cluster master's return are bounded (MAX_KEPT_WRITES per provider, oldest dropped
// first): past the bound, what is dropped is said (a warning naming the provider and how many), not silent. Before,
// the 1,001st write of a long outage pushed the oldest out without a word, and its shared count stayed off.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parsePrometheusText, sumOf } from "../../test/helpers/prometheus-text.ts";
import { isRedisClusterAvailable, REDIS_CLUSTER_MISSING, useRedisCluster } from "../../test/helpers/redis-cluster.ts";
import { nodesOfTags, scopeOf, useClusterBackend, waitFor } from "../../test/helpers/redis-cluster-state.ts";
import { isReservation, type Reservation } from "../limits/budgets.ts";
import { staticLiveState } from "../observability/live-state.ts";
import { GatewayMetrics } from "../observability/metrics.ts";
import { MAX_KEPT_WRITES } from "./redis-kept-batches.ts";

const skip = isRedisClusterAvailable() ? false : REDIS_CLUSTER_MISSING;
const TIMEOUT_MS = 200;
const BEYOND = 10;

describe("writes kept for a dead Redis Cluster master, past the bound", { skip }, () => {
  test("the oldest are dropped, and a warning says how many for which provider", async (t) => {
    const cluster = await useRedisCluster(t);
    const victim = (await nodesOfTags(t, cluster, ["alpha"])).get("alpha");
    assert.ok(victim !== undefined);
    const { state, logs } = await useClusterBackend(t, cluster, "kept-bound:", TIMEOUT_MS);
    const reserved: Reservation[] = [];
    for (let request = 0; request < MAX_KEPT_WRITES + BEYOND; request++) {
      // One deployment each, with a limit too small for a budget lease: each reserve is charged in Redis.
      const scopes = [scopeOf(`deployment:alpha/m${request}`, { tpm: 1_000 })];
      const reservation = await state.ledger.reserve(scopes, { tokens: 500 }, Date.now());
      assert.ok(isReservation(reservation));
      reserved.push(reservation);
    }
    await victim.kill();
    // Three reserves that fail on the dead master (served locally): alpha's master is known down.
    const other = [scopeOf("deployment:alpha/other", { rpm: 10 })];
    for (let request = 0; request < 3; request++) {
      assert.ok(isReservation(await state.ledger.reserve(other, { tokens: 0 }, Date.now())));
    }
    assert.match(state.status().detail, /alpha/, "alpha served locally");
    // Each answered with more tokens than estimated: a charge each, kept for the master's return.
    for (const reservation of reserved) state.ledger.reconcile(reservation, 900, Date.now());
    const droppedCount = () => state.keptWritesDropped?.().get("provider:alpha") ?? 0;
    const dropped = () => logs.filter((line) => line.startsWith("warn: ") && line.includes("dropped"));
    await waitFor(() => dropped().length > 0, 5_000, `a warning when the first is dropped: ${logs.join("; ")}`);
    assert.match(dropped()[0] ?? "", /provider alpha .* the oldest are dropped from now on/);
    // Counted for the metric as they are dropped (before: logged only), all of them before the master is back.
    await waitFor(() => droppedCount() === BEYOND, 5_000, `${BEYOND} counted: ${droppedCount()}`);
    // Back (empty): what is left is replayed, and how many were dropped in all is said.
    await victim.restart();
    await waitFor(() => dropped().length > 1, 20_000, `the count when it answers again: ${logs.join("; ")}`);
    assert.match(dropped()[1] ?? "", new RegExp(`^warn: ${BEYOND} budget writes of provider alpha .* were dropped`));
    assert.equal(dropped().length, 2, "said twice, not once per write");
    assert.equal(droppedCount(), BEYOND, "the replay counts none again");
    // As /metrics shows it: the counter, by provider.
    const live = { ...staticLiveState([]), keptWritesDropped: () => state.keptWritesDropped?.() ?? new Map() };
    const text = parsePrometheusText((await new GatewayMetrics(live, { includeProcessMetrics: false }).render()).body);
    assert.equal(sumOf(text, "llm_gateway_state_kept_writes_dropped_total", { provider: "alpha" }), BEYOND);
  });
});
