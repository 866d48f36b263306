import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AnswerRows } from "../state/state-types.ts";
import { AnswerCache, type CacheSettings, cacheKey, SharedAnswerCache } from "./answer-cache.ts";

const SETTINGS: CacheSettings = { enabled: true, ttlMs: 1_000, maxEntries: 3, maxBytes: 1_000 };

function answer(bodyText: string, storedAtMs: number) {
  return {
    api: "chat" as const,
    form: "json" as const,
    bodyText,
    status: 200,
    provider: "p",
    model: "m",
    cost: "free" as const,
    storedAtMs,
  };
}

describe("AnswerCache", () => {
  test("an answer is given again until its time to live has passed, then it is gone", () => {
    const cache = new AnswerCache();
    cache.put("k", answer("a", 0), SETTINGS, 0);
    assert.equal(cache.get("k", SETTINGS, 999)?.bodyText, "a");
    assert.equal(cache.get("k", SETTINGS, 1_000), undefined);
    assert.deepEqual(cache.summary, { entries: 0, bytes: 0, hits: 1, misses: 1, shared: false });
  });

  test("past max_entries or max_bytes the oldest answers go first; one above a tenth of max_bytes is not kept", () => {
    const cache = new AnswerCache();
    for (const [index, key] of ["a", "b", "c", "d"].entries()) cache.put(key, answer(key, index), SETTINGS, index);
    assert.equal(cache.get("a", SETTINGS, 4), undefined);
    assert.equal(cache.get("d", SETTINGS, 4)?.bodyText, "d");
    assert.equal(cache.put("big", answer("x".repeat(101), 5), SETTINGS, 5), false);
    assert.equal(cache.summary.entries, 3);
    const small: CacheSettings = { ...SETTINGS, maxEntries: 100, maxBytes: 300 };
    const bytes = new AnswerCache();
    for (let index = 0; index < 20; index++) bytes.put(`k${index}`, answer("y".repeat(30), index), small, index);
    assert.equal(bytes.summary.bytes, 300);
    assert.equal(bytes.summary.entries, 10);
    assert.equal(bytes.get("k9", small, 20), undefined);
    assert.equal(bytes.get("k10", small, 20)?.bodyText.length, 30);
  });

  test("a shorter time to live after a reload applies to what is kept; max_entries 0 keeps nothing", () => {
    const cache = new AnswerCache();
    cache.put("k", answer("a", 0), SETTINGS, 0);
    assert.equal(cache.get("k", { ...SETTINGS, ttlMs: 500 }, 600), undefined);
    assert.equal(cache.put("k", answer("a", 0), { ...SETTINGS, maxEntries: 0 }, 0), false);
    assert.equal(cache.summary.entries, 0);
  });

  test("the key tells endpoints, clients and bodies apart", () => {
    const body = { model: "m", messages: [{ role: "user", content: "hi" }] };
    const base = cacheKey("f", "chat", undefined, body);
    assert.equal(cacheKey("f", "chat", undefined, { ...body }), base);
    assert.notEqual(cacheKey("f", "responses", undefined, body), base);
    assert.notEqual(cacheKey("f", "chat", "team-a", body), base);
    assert.notEqual(cacheKey("f", "chat", undefined, { ...body, temperature: 0 }), base);
    // The client's name and the body cannot be shifted into each other.
    assert.notEqual(cacheKey("f", "chat", "a", { b: 1 }), cacheKey("f", "chat", "a\u0000", { b: 1 }));
    // Another config's fingerprint (answer-fingerprint.ts) is another key.
    assert.notEqual(cacheKey("g", "chat", undefined, body), base);
    // A namespace is another key, for the same client only; without one the key is the one it always was.
    assert.equal(cacheKey("f", "chat", undefined, body, undefined), base);
    assert.notEqual(cacheKey("f", "chat", undefined, body, "ns"), base);
    assert.notEqual(cacheKey("f", "chat", "team-a", body, "ns"), cacheKey("f", "chat", "team-b", body, "ns"));
    assert.notEqual(cacheKey("f", "chat", undefined, body, "a"), cacheKey("f", "chat", undefined, body, "b"));
  });

  test("an answer kept for less than the time to live by its request is not given after its own time, and freed", () => {
    const cache = new AnswerCache();
    cache.put("short", { ...answer("s", 0), keptForMs: 100 }, SETTINGS, 0);
    cache.put("long", answer("l", 0), SETTINGS, 0);
    assert.equal(cache.get("short", SETTINGS, 99)?.bodyText, "s");
    assert.equal(cache.get("short", SETTINGS, 100), undefined);
    assert.equal(cache.get("long", SETTINGS, 100)?.bodyText, "l", "the others keep the cache's time to live");
    assert.equal(cache.summary.entries, 1, "the expired one's memory is freed at its lookup");
  });

  test("an answer past its own time to live is dropped before a live one is evicted for room", () => {
    const cache = new AnswerCache();
    cache.put("live", answer("l", 0), SETTINGS, 0);
    for (const key of ["s1", "s2"]) cache.put(key, { ...answer(key, 1), keptForMs: 10 }, SETTINGS, 1);
    // At max_entries (3), with two answers no request may get any more: they make the room, not the live one.
    cache.put("new", answer("n", 50), SETTINGS, 50);
    assert.equal(cache.get("live", SETTINGS, 50)?.bodyText, "l");
    assert.equal(cache.get("new", SETTINGS, 50)?.bodyText, "n");
    assert.equal(cache.summary.entries, 2, "freed at the put after their time, not held until ttl_ms");
    // Replaced before its own time: the replacement (kept for the whole ttl_ms) is not dropped at the old time.
    cache.put("r", { ...answer("old", 60), keptForMs: 10 }, SETTINGS, 60);
    cache.put("r", answer("new", 61), SETTINGS, 61);
    cache.put("x", answer("x", 80), SETTINGS, 80);
    assert.equal(cache.get("r", SETTINGS, 80)?.bodyText, "new");
    // A key replaced again and again, each kept for less: still one answer, the latest, until its own time.
    const many = new AnswerCache();
    for (let index = 0; index < 500; index++) {
      many.put("k", { ...answer(`v${index}`, index), keptForMs: 900 }, SETTINGS, index);
    }
    assert.equal(many.get("k", SETTINGS, 1_398)?.bodyText, "v499");
    assert.equal(many.get("k", SETTINGS, 1_399), undefined);
    assert.deepEqual([many.summary.entries, many.summary.bytes], [0, 0]);
  });
});

describe("SharedAnswerCache figures", () => {
  test("the fleet's count is read at most once a second; calls while it is on its way share it", async () => {
    let reads = 0;
    let release: () => void = () => {};
    const rows: AnswerRows = {
      open() {},
      get: async () => undefined,
      put: async () => ({ entries: 0, bytes: 0 }),
      clear: async () => 0,
      count: () => {
        reads += 1;
        return new Promise((resolve) => {
          release = () => resolve({ entries: reads, bytes: 10 * reads });
        });
      },
    };
    const cache = new SharedAnswerCache(rows);
    const first = cache.currentSummary(0);
    const second = cache.currentSummary(10);
    assert.equal(reads, 1, "a second call while the read is on its way shares it");
    release();
    assert.equal((await first).entries, 1);
    assert.equal((await second).entries, 1);
    assert.equal((await cache.currentSummary(999)).entries, 1);
    assert.equal(reads, 1, "within the second: the figures read");
    const third = cache.currentSummary(1_000);
    assert.equal(reads, 2, "a second later: read again");
    release();
    assert.deepEqual(await third, { entries: 2, bytes: 20, hits: 0, misses: 0, shared: true });
  });
});
