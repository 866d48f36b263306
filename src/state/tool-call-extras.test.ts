import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../clock.ts";
import { MAX_EXTRA_BYTES, MemoryToolCallExtras, TOOL_CALL_EXTRAS_LIMITS } from "./tool-call-extras.ts";

const signed = (signature: string) => ({ google: { thought_signature: signature } });

test("bounded by count: the least recently used call is forgotten first, a recall counts as a use", async () => {
  const store = new MemoryToolCallExtras({ maxEntries: 3, maxBytes: 1_000_000, ttlMs: 60_000 }, new ManualClock());
  await store.remember([
    { id: "a", extra: signed("A") },
    { id: "b", extra: signed("B") },
    { id: "c", extra: signed("C") },
  ]);
  assert.deepEqual([...(await store.recall(["a"])).keys()], ["a"]);
  await store.remember([{ id: "d", extra: signed("D") }]);
  const found = await store.recall(["a", "b", "c", "d"]);
  assert.deepEqual([...found.keys()].sort(), ["a", "c", "d"], "b was the least recently used");
  assert.equal(store.size, 3);
});

test("bounded by bytes: old calls go until the kept values fit; one too large is not kept at all", async () => {
  const entryBytes = 1 + JSON.stringify(signed("x".repeat(100))).length;
  const store = new MemoryToolCallExtras(
    { maxEntries: 1_000, maxBytes: entryBytes * 2, ttlMs: 60_000 },
    new ManualClock(),
  );
  for (const id of ["a", "b", "c"]) await store.remember([{ id, extra: signed("x".repeat(100)) }]);
  assert.equal(store.size, 2);
  assert.ok(store.bytes <= entryBytes * 2, String(store.bytes));
  assert.deepEqual([...(await store.recall(["a", "b", "c"])).keys()], ["b", "c"]);
  await store.remember([{ id: "huge", extra: signed("x".repeat(MAX_EXTRA_BYTES)) }]);
  assert.equal((await store.recall(["huge"])).size, 0);
  assert.equal(store.size, 2, "the too-large value evicted nothing");
});

test("bounded by age: a call older than the TTL is forgotten, and its bytes freed", async () => {
  const clock = new ManualClock();
  const store = new MemoryToolCallExtras({ maxEntries: 100, maxBytes: 1_000_000, ttlMs: 1_000 }, clock);
  await store.remember([{ id: "a", extra: signed("A") }]);
  clock.advance(999);
  assert.equal((await store.recall(["a"])).size, 1);
  clock.advance(1);
  assert.equal((await store.recall(["a"])).size, 0);
  assert.equal(store.size, 0);
  assert.equal(store.bytes, 0);
  // Expired ones are also swept when new ones come.
  await store.remember([{ id: "b", extra: signed("B") }]);
  clock.advance(5_000);
  await store.remember([{ id: "c", extra: signed("C") }]);
  assert.equal(store.size, 1);
});

test("a call kept again replaces its value without counting twice", async () => {
  const store = new MemoryToolCallExtras({ maxEntries: 10, maxBytes: 1_000_000, ttlMs: 60_000 }, new ManualClock());
  await store.remember([{ id: "a", extra: signed("A") }]);
  const bytes = store.bytes;
  await store.remember([{ id: "a", extra: signed("Z") }]);
  assert.equal(store.size, 1);
  assert.equal(store.bytes, bytes);
  assert.deepEqual((await store.recall(["a"])).get("a"), signed("Z"));
});

const reasoning = (bytes: number) => ({ reasoning_details: [{ type: "reasoning.text", text: "x".repeat(bytes) }] });

test("a reasoning_details array of a long thinking (300 KB) is kept; one over the per-value bound is not", async () => {
  const store = new MemoryToolCallExtras(TOOL_CALL_EXTRAS_LIMITS, new ManualClock());
  await store.remember([{ id: "long", extra: reasoning(300_000) }]);
  assert.deepEqual((await store.recall(["long"])).get("long"), reasoning(300_000));
  await store.remember([{ id: "over", extra: reasoning(MAX_EXTRA_BYTES) }]);
  assert.equal((await store.recall(["over"])).size, 0);
  assert.equal(store.size, 1, "the value over the bound evicted nothing");
});

test("big values keep the store within its bytes bound: a client sending turn after turn evicts its oldest", async () => {
  const store = new MemoryToolCallExtras(TOOL_CALL_EXTRAS_LIMITS, new ManualClock());
  for (let turn = 0; turn < 80; turn++) {
    await store.remember([{ id: `turn-${turn}`, extra: reasoning(MAX_EXTRA_BYTES - 1_000) }]);
    assert.ok(store.bytes <= TOOL_CALL_EXTRAS_LIMITS.maxBytes, `${store.bytes} bytes after turn ${turn}`);
  }
  assert.equal(store.size, Math.floor(TOOL_CALL_EXTRAS_LIMITS.maxBytes / (MAX_EXTRA_BYTES - 1_000 + 60)));
  assert.equal((await store.recall(["turn-79"])).size, 1, "the newest is kept");
  assert.equal((await store.recall(["turn-0"])).size, 0, "the oldest went");
});
