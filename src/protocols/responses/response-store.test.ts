import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../clock.ts";
import { completedAnswer } from "../__fixtures__/fixtures.ts";
import { ResponseStore, type StoredResponse } from "./response-store.ts";

function stored(id: string, text = "hi"): StoredResponse {
  const response = completedAnswer(id, text, `msg_${id}`);
  return { response, conversation: [{ role: "assistant", content: text }] };
}

test("response store: a client keeping past the caps evicts its own oldest, not another client's", () => {
  const store = new ResponseStore({ maxEntries: 3, maxBytes: 1_000_000, maxAgeMs: 60_000 }, new ManualClock());
  store.put({ ...stored("b1"), client: "bob" });
  store.put(stored("u1")); // an unnamed key's: an owner of its own
  for (let i = 1; i <= 6; i++) store.put({ ...stored(`a${i}`), client: "alice" });
  assert.equal(store.get("b1")?.client, "bob");
  assert.equal(store.findItem("msg_b1")?.id, "msg_b1");
  assert.equal(store.get("u1")?.response.id, "u1");
  assert.equal(store.get("a6")?.response.id, "a6");
  assert.equal(store.get("a5"), undefined);
  assert.equal(store.findItem("msg_a1"), undefined);
  // By bytes: alice's large answers push out alice's older ones only.
  const bytes = new ResponseStore({ maxEntries: 100, maxBytes: 6_000, maxAgeMs: 60_000 }, new ManualClock());
  bytes.put({ ...stored("b1", "x".repeat(300)), client: "bob" });
  for (let i = 1; i <= 4; i++) bytes.put({ ...stored(`a${i}`, "x".repeat(500)), client: "alice" });
  assert.equal(bytes.get("b1")?.client, "bob");
  assert.equal(bytes.get("a1"), undefined);
  assert.equal(bytes.get("a4")?.client, "alice");
});

test("response store: evicts the oldest past the count cap, with its items", () => {
  const store = new ResponseStore({ maxEntries: 2, maxBytes: 1_000_000, maxAgeMs: 60_000 }, new ManualClock());
  store.put(stored("a"));
  store.put(stored("b"));
  store.put(stored("c"));
  assert.equal(store.size, 2);
  assert.equal(store.get("a"), undefined);
  assert.equal(store.findItem("msg_a"), undefined);
  assert.equal(store.get("c")?.response.id, "c");
  assert.equal(store.findItem("msg_b")?.id, "msg_b");
});

test("response store: evicts the oldest past the byte cap and refuses one entry larger than the cap", () => {
  const one = Buffer.byteLength(JSON.stringify(stored("a")));
  const store = new ResponseStore({ maxEntries: 100, maxBytes: one * 2 + 10, maxAgeMs: 60_000 }, new ManualClock());
  store.put(stored("a"));
  store.put(stored("b"));
  assert.equal(store.size, 2);
  assert.equal(store.bytes, one * 2);
  store.put(stored("c"));
  assert.deepEqual([store.get("a"), store.get("b")?.response.id, store.get("c")?.response.id], [undefined, "b", "c"]);
  assert.equal(store.put(stored("big", "x".repeat(one * 3))), false);
  assert.equal(store.get("big"), undefined);
  assert.equal(store.size, 2, "a refused entry evicts nothing");
});

test("response store: entries expire after max age; delete removes an entry and its items", () => {
  const clock = new ManualClock();
  const store = new ResponseStore({ maxEntries: 100, maxBytes: 1_000_000, maxAgeMs: 1_000 }, clock);
  store.put(stored("a"));
  clock.advance(500);
  store.put(stored("b"));
  clock.advance(500);
  assert.equal(store.get("a"), undefined, "expired exactly at max age");
  assert.equal(store.get("b")?.response.id, "b");
  assert.equal(store.delete("b"), true);
  assert.equal(store.delete("b"), false);
  assert.equal(store.findItem("msg_b"), undefined);
  assert.equal(store.bytes, 0);
});

test("response store: putAppending keeps events that extend the kept ones on the same list, replaces others, counts the JSON's bytes", () => {
  const store = new ResponseStore({ maxEntries: 100, maxBytes: 1_000_000, maxAgeMs: 60_000 }, new ManualClock());
  const quoted = 'data: {"a":"\u00e9\\n"}\n\n'; // escapes and a two-byte character: counted as JSON counts them
  assert.equal(store.putAppending({ ...stored("r"), events: ["one", quoted] }), true);
  const list = store.get("r")?.events;
  assert.equal(store.putAppending({ ...stored("r"), events: ["one", quoted, "three"] }), true);
  assert.equal(store.get("r")?.events, list, "extended in place");
  assert.deepEqual(list, ["one", quoted, "three"]);
  assert.equal(store.bytes, Buffer.byteLength(JSON.stringify(store.get("r"))));
  // Fewer events, or another last kept one: not an extension; kept anew, the old list untouched.
  assert.equal(store.putAppending({ ...stored("r"), events: ["other"] }), true);
  assert.deepEqual(store.get("r")?.events, ["other"]);
  assert.deepEqual(list, ["one", quoted, "three"]);
  assert.equal(store.putAppending({ ...stored("r"), events: ["else", "more"] }), true);
  assert.deepEqual(store.get("r")?.events, ["else", "more"]);
  assert.equal(store.bytes, Buffer.byteLength(JSON.stringify(store.get("r"))));
  // Over the byte cap once extended: nothing kept, as `put`.
  const small = new ResponseStore({ maxEntries: 100, maxBytes: 2_000, maxAgeMs: 60_000 }, new ManualClock());
  assert.equal(small.putAppending({ ...stored("s"), events: ["a"] }), true);
  assert.equal(small.putAppending({ ...stored("s"), events: ["a", "x".repeat(2_000)] }), false);
  assert.equal(small.get("s"), undefined);
  assert.equal(small.bytes, 0);
  // Without events: as `put`.
  assert.equal(store.putAppending(stored("plain")), true);
  assert.equal(store.get("plain")?.events, undefined);
});
