// KeptBatches' count of the writes its bound dropped (MAX_KEPT_WRITES per provider): said when they are replayed.
// A stand-in link records what is said; no batch may have run, so nothing is asked of Redis.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { SharedStateRedis } from "./redis-client.ts";
import { type Batch, KeptBatches, MAX_KEPT_WRITES } from "./redis-kept-batches.ts";

function keptOf(id: number) {
  const batch: Batch = {
    scopeId: "deployment:alpha/m",
    writes: [{ kind: "c", keys: ["k"], args: [1] }],
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
