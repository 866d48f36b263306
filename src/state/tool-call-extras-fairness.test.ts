// The memory store of kept tool-call extras is shared by every client (and the state file keeps what it keeps): past
// a bound, the value evicted is the oldest of the client holding the most, so a heavy client's long thinking pushes
// out its own oldest values, never a light client's (tool-call-extras.ts, docs/protocols.md "Thought signatures").
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { ManualClock } from "../clock.ts";
import { MemoryToolCallExtras, TOOL_CALL_EXTRAS_LIMITS } from "./tool-call-extras.ts";
import { TOOL_CALL_EXTRAS_TABLE, ToolCallExtrasRows } from "./tool-call-extras-rows.ts";

const reasoning = (text: string) => ({ reasoning_details: [{ type: "reasoning.text", text }] });
/** What every value of these tests counts (its id and its JSON). */
const VALUE_BYTES = 1_000;
/** `c:<client>/call-<nnn>`: all as long, so that every value counts VALUE_BYTES. */
const idOf = (client: string, n: number) => `c:${client}/call-${String(n).padStart(3, "0")}`;
const VALUE = reasoning("x".repeat(VALUE_BYTES - idOf("a", 0).length - JSON.stringify(reasoning("")).length));

function holding(values: number, clock = new ManualClock()): MemoryToolCallExtras {
  return new MemoryToolCallExtras({ maxEntries: 1_000, maxBytes: values * VALUE_BYTES, ttlMs: 60_000 }, clock);
}

/** Keeps `client`'s calls `from` to `to` (excluded), one write each, the clock moving 1 ms between them. */
async function keep(store: MemoryToolCallExtras, client: string, from: number, to: number, clock?: ManualClock) {
  for (let n = from; n < to; n++) {
    await store.remember([{ id: idOf(client, n), extra: VALUE }]);
    clock?.advance(1);
  }
}

/** Which of `client`'s calls 0 to `count` are kept; read without a recall, which would count as a use. */
function keptOf(store: MemoryToolCallExtras, client: string, count: number): number[] {
  return range(0, count).filter((n) => store.persisted(idOf(client, n)) !== undefined);
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, index) => from + index);

test("two clients: the heavy one writing past the bytes bound evicts its own oldest, none of the other's", async () => {
  const store = holding(10);
  await keep(store, "b", 0, 2);
  await keep(store, "a", 0, 30);
  assert.equal(store.bytes, 10 * VALUE_BYTES, "the total bound holds");
  assert.deepEqual(keptOf(store, "b", 2), [0, 1], "b's values were evicted by a's");
  assert.deepEqual(keptOf(store, "a", 30), range(22, 30), "a keeps its newest in the rest");
});

test("three clients: the one holding the most gives way, whoever writes; a tie goes against the older value", async () => {
  const store = holding(10);
  await keep(store, "b", 0, 2);
  await keep(store, "c", 0, 3);
  await keep(store, "a", 0, 30);
  assert.deepEqual(keptOf(store, "b", 2), [0, 1], "a's flood evicted b's values");
  assert.deepEqual(keptOf(store, "c", 3), [0, 1, 2], "a's flood evicted c's values");
  assert.deepEqual(keptOf(store, "a", 30), range(25, 30));
  // A light client writing at the bound: the value that goes is still the heavy one's oldest.
  await keep(store, "b", 2, 3);
  assert.deepEqual(keptOf(store, "b", 3), [0, 1, 2]);
  assert.deepEqual(keptOf(store, "a", 30), range(26, 30));
  // c now grows to hold as much as a (4 each): of the two, the one whose oldest value was used longer ago gives way,
  // here c's first (a's were all kept after it). So clients holding as much share by least recent use.
  await keep(store, "c", 3, 4);
  assert.deepEqual(keptOf(store, "c", 4), [1, 2, 3]);
  assert.deepEqual(keptOf(store, "a", 30), range(26, 30));
  assert.equal(store.bytes, 10 * VALUE_BYTES);
});

test("a client alone may fill the whole store; once another writes, the heavy one still keeps to its own", async () => {
  const store = holding(10);
  await keep(store, "a", 0, 10);
  assert.equal(store.size, 10, "one client alone fills the bound");
  // A recall is a use: call 0 is now a's most recently used, so call 1 goes first.
  assert.equal((await store.recall([idOf("a", 0)])).size, 1);
  await keep(store, "a", 10, 11);
  assert.deepEqual(keptOf(store, "a", 11), [0, ...range(2, 11)]);
  await keep(store, "b", 0, 2);
  assert.deepEqual(keptOf(store, "a", 11), [0, ...range(4, 11)]);
  await keep(store, "a", 11, 30);
  assert.deepEqual(keptOf(store, "b", 2), [0, 1], "a's writes evicted b's values");
  assert.deepEqual(keptOf(store, "a", 30), range(22, 30));
});

test("the count bound is shared the same way: many tiny signatures of one client evict its own", async () => {
  const store = new MemoryToolCallExtras({ maxEntries: 10, maxBytes: 1_000_000, ttlMs: 60_000 }, new ManualClock());
  const signed = { google: { thought_signature: "sig" } };
  for (const id of ["c:b/1", "c:b/2", "c:c/1"]) await store.remember([{ id, extra: signed }]);
  for (let n = 0; n < 50; n++) await store.remember([{ id: `c:a/${n}`, extra: signed }]);
  assert.equal(store.size, 10);
  const found = await store.recall(["c:b/1", "c:b/2", "c:c/1"]);
  assert.equal(found.size, 3, "a's flood evicted b's or c's signatures");
  assert.deepEqual([...(await store.recall(["c:a/42", "c:a/43", "c:a/49"])).keys()], ["c:a/43", "c:a/49"]);
});

test("an expired value of any client goes before the heavy one's; a light client's fresh one stays", async () => {
  const clock = new ManualClock();
  const store = new MemoryToolCallExtras({ maxEntries: 1_000, maxBytes: 6 * VALUE_BYTES, ttlMs: 1_000 }, clock);
  await keep(store, "b", 0, 1);
  clock.advance(500);
  await keep(store, "c", 0, 1);
  await keep(store, "a", 0, 4);
  clock.advance(500);
  // b's value has expired: the first write over the bound takes its room, the next ones a's.
  await keep(store, "a", 4, 7);
  assert.deepEqual(keptOf(store, "b", 1), []);
  assert.deepEqual(keptOf(store, "c", 1), [0], "a's writes evicted c's value");
  assert.deepEqual(keptOf(store, "a", 7), range(2, 7));
});

test("the state file: a restart under the bounds keeps the light client's rows and drops the heavy one's oldest", async () => {
  // The file holds what the memory store holds, and a restart loads its rows (oldest first) through the same bounds:
  // lower bounds of a newer version, or a file another process wrote, must keep the fair share too.
  const clock = new ManualClock();
  const db = new DatabaseSync(":memory:");
  db.exec(TOOL_CALL_EXTRAS_TABLE);
  const writer = holding(20, clock);
  const written = new ToolCallExtrasRows(db, writer);
  written.load(clock.now());
  await keep(writer, "b", 0, 2, clock);
  await keep(writer, "a", 0, 15, clock);
  written.write(written.takeChanged());

  const reader = holding(10, clock);
  const loaded = new ToolCallExtrasRows(db, reader);
  assert.equal(loaded.load(clock.now()), 10);
  loaded.write(loaded.takeChanged());
  assert.deepEqual(keptOf(reader, "b", 2), [0, 1], "the restart dropped b's rows for a's");
  assert.deepEqual(keptOf(reader, "a", 15), range(7, 15));
  const inFile = db
    .prepare("SELECT call_key FROM tool_call_extras ORDER BY call_key")
    .all()
    .map((row) => String(row.call_key));
  assert.deepEqual(inFile, [...range(7, 15).map((n) => idOf("a", n)), idOf("b", 0), idOf("b", 1)]);
  db.close();
});

test("the default bounds: a client sending ~1 MiB arrays turn after turn leaves another client's array kept", async () => {
  const store = new MemoryToolCallExtras(TOOL_CALL_EXTRAS_LIMITS, new ManualClock());
  await store.remember([{ id: "c:b/reasoning_details toolu_1", extra: reasoning("light") }]);
  for (let turn = 0; turn < 40; turn++) {
    await store.remember([{ id: `c:a/reasoning_details toolu_${turn}`, extra: reasoning("x".repeat(1_000_000)) }]);
    assert.ok(store.bytes <= TOOL_CALL_EXTRAS_LIMITS.maxBytes, `${store.bytes} bytes after turn ${turn}`);
  }
  assert.equal((await store.recall(["c:b/reasoning_details toolu_1"])).size, 1, "a's turns evicted b's array");
  assert.equal((await store.recall(["c:a/reasoning_details toolu_39"])).size, 1);
});

test("each bound has its own heaviest client: the most calls past the count bound, the most bytes past the bytes one", async () => {
  const signed = { google: { thought_signature: "sig" } };
  const ids = (client: string, count: number) => range(0, count).map((n) => `c:${client}/${n}`);
  // Count: a holds the most bytes (3 arrays), b floods tiny signatures past 10 calls: b's own oldest go, not a's.
  const counted = new MemoryToolCallExtras({ maxEntries: 10, maxBytes: 100_000, ttlMs: 60_000 }, new ManualClock());
  await keep(counted, "a", 0, 3);
  for (const id of ids("b", 20)) await counted.remember([{ id, extra: signed }]);
  assert.equal(counted.size, 10);
  assert.deepEqual(keptOf(counted, "a", 3), [0, 1, 2], "b's calls evicted the client holding the most bytes");
  assert.equal((await counted.recall(ids("b", 20))).size, 7);
  // Bytes: b holds the most calls (20 tiny signatures), a's arrays pass the bytes bound: a's own oldest go, not b's.
  const weighed = new MemoryToolCallExtras(
    { maxEntries: 100, maxBytes: 10 * VALUE_BYTES, ttlMs: 60_000 },
    new ManualClock(),
  );
  for (const id of ids("b", 20)) await weighed.remember([{ id, extra: signed }]);
  await keep(weighed, "a", 0, 30);
  assert.ok(weighed.bytes <= 10 * VALUE_BYTES);
  assert.equal((await weighed.recall(ids("b", 20))).size, 20, "a's arrays evicted the client holding the most calls");
  assert.deepEqual(keptOf(weighed, "a", 30), range(21, 30));
});
