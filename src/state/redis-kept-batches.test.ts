// KeptBatches' count of the writes its bound dropped (MAX_KEPT_WRITES per provider): said when they are replayed.
// A stand-in link records what is said; no batch may have run, so nothing is asked of Redis.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parsePrometheusText, sumOf } from "../../test/helpers/prometheus-text.ts";
import { staticLiveState } from "../observability/live-state.ts";
import { GatewayMetrics } from "../observability/metrics.ts";
import type { SharedStateRedis } from "./redis-client.ts";
import { type Batch, KeptBatches, MAX_KEPT_WRITES } from "./redis-kept-batches.ts";
import { RedisLink } from "./redis-link.ts";

function keptOf(id: number, scopeId = "deployment:alpha/m") {
  const batch: Batch = {
    scopeId,
    writes: [{ kind: "c", scopeId, keys: ["k"], args: [1] }],
    generation: 0,
    dataSet: undefined,
    sent: Promise.withResolvers<void>(),
  };
  return { batch, marker: { key: `m${id}`, applied: "a", id, scopeId: batch.scopeId }, mayHaveRun: false };
}

test("drops are said when what is left is replayed, not while every batch still waits for the data epoch's master", () => {
  const said: string[] = [];
  const counted: number[] = [];
  const link = {
    isUpFor: () => true,
    recordSuccess: () => {},
    recordFailure: () => {},
    recordKeptDropped: (tag: string, writes: number, isReplayed: boolean) =>
      said.push(`${tag} ${writes} ${isReplayed ? "replayed" : "first"}`),
    countKeptDropped: (_tag: string, writes: number) => counted.push(writes),
  };
  const kept = new KeptBatches({} as SharedStateRedis, link);
  let id = 0;
  for (; id < MAX_KEPT_WRITES + 1; id++) kept.keep("alpha", keptOf(id));
  assert.deepEqual(said, ["alpha 1 first"]);
  // Their master answers, the data epoch's does not: every batch (a give-back each) waits, none is replayed.
  assert.deepEqual(
    kept.take(
      () => false,
      () => true,
    ),
    [["alpha", []]],
  );
  kept.keep("alpha", keptOf(id++));
  assert.deepEqual(said, ["alpha 1 first"], "nothing replayed yet: no count, and no second 'first' warning");
  const [[, replayed] = []] = kept.take(
    () => false,
    () => false,
  );
  assert.equal(replayed?.length, MAX_KEPT_WRITES);
  assert.deepEqual(said, ["alpha 1 first", "alpha 2 replayed"], "the count once, with the replay");
  // The metric's count moves at each drop, while the warnings wait for the replay.
  assert.deepEqual(counted, [1, 1]);
});

test("a named client's dropped budget writes are counted as that client's, apart from a provider of its name", async () => {
  // A real link on a Cluster (its count is what /metrics reads), up: nothing is down, nothing is asked of Redis.
  const link = new RedisLink(
    "redis://cluster",
    undefined,
    () => 0,
    () => true,
    true,
  );
  link.markUp();
  const kept = new KeptBatches({} as SharedStateRedis, link);
  // The client bob's budget and the provider bob's scopes share the hash tag {bob}: one list, one bound.
  let id = 0;
  for (; id < MAX_KEPT_WRITES; id++) kept.keep("bob", keptOf(id, "client:bob"));
  for (let more = 0; more < 3; more++) kept.keep("bob", keptOf(id++, "provider:bob"));
  for (let more = 0; more < 4; more++) kept.keep("bob", keptOf(id++, "deployment:bob/m"));
  const live = { ...staticLiveState([]), keptWritesDropped: () => link.keptWritesDropped() };
  const text = parsePrometheusText((await new GatewayMetrics(live, { includeProcessMetrics: false }).render()).body);
  const metric = "llm_gateway_state_kept_writes_dropped_total";
  // The 7 oldest dropped were the client's; before, counted as provider="bob" (the batches' tag).
  assert.equal(sumOf(text, metric, { client: "bob" }), 7);
  assert.equal(sumOf(text, metric, { provider: "bob" }), 0, "no provider write was dropped");
  // The provider's own drops under provider="bob", not the client's.
  for (let more = 0; more < MAX_KEPT_WRITES; more++) kept.keep("bob", keptOf(id++, "provider:bob"));
  const after = parsePrometheusText((await new GatewayMetrics(live, { includeProcessMetrics: false }).render()).body);
  assert.equal(sumOf(after, metric, { client: "bob" }), MAX_KEPT_WRITES);
  assert.equal(sumOf(after, metric, { provider: "bob" }), 7);
});
