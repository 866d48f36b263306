// The shared record of a client's embeddings batches under way (redis-chunked-batches.ts) on a real Redis. The first
// test is coverage written in review (no bug found there): the 65th batch is refused, not admitted unseen; an ended or
// lapsed entry frees its place; the keys live until the latest deadline; a client's name with braces stays in one
// slot. The second holds the script's side of the review's fixes: a process's own batches listed again after Redis
// lost them, and their rests set (the e2e proofs are in embeddings-client-batches-replicas.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { Redis } from "ioredis";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { useRedisState } from "../../test/helpers/redis-state.ts";
import { ManualClock } from "../clock.ts";
import { CHUNKED_BATCHES_KEEP_MS, MOST_CHUNKED_BATCHES } from "./redis-chunked-batches-lua.ts";
import { hashPartOf, hashSlot } from "./redis-hash-slot.ts";
import { chunkedBatchesKeys } from "./redis-keys.ts";
import type { WindowTerms } from "./state-types.ts";

const NOW_MS = Date.UTC(2026, 11, 8, 12, 0, 0);
const SCOPE = "client:ci";
/** A window that takes any batch: only the count of entries can refuse. */
const ROOMY: WindowTerms = {
  kind: "window",
  windowMs: 60_000,
  limit: 1e12,
  remaining: 1e12,
  resetsAtMs: undefined,
  lapsesAtMs: undefined,
};
const NONE = { tokens: 0, earliestMs: Number.MAX_SAFE_INTEGER, latestMs: 0 };

test("the record of a client's batches: 64 at most, freed by an end or a lapse, kept until the latest deadline", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const redis = await useRedisServer(t);
  const prefix = "chunked-record:";
  const state = await useRedisState(t, redis.url, new ManualClock(NOW_MS), prefix);
  const shared = state.chunkedBatches;
  assert.ok(shared !== undefined);
  const admin = new Redis(redis.url);
  t.after(() => admin.disconnect());
  const admit = (id: string, deadlineMs: number, nowMs = NOW_MS, scope = SCOPE) =>
    shared.admit(scope, { id, tokens: 10, deadlineMs }, [ROOMY], NONE, [], nowMs);
  // Deadlines 1 s apart: the first lapses first.
  for (let n = 1; n <= MOST_CHUNKED_BATCHES; n++) {
    assert.equal(await admit(`b${n}`, NOW_MS + 60_000 + n * 1_000), true, `batch ${n} admitted`);
  }
  const [key, rests] = chunkedBatchesKeys(prefix, SCOPE);
  const latestMs = NOW_MS + 60_000 + MOST_CHUNKED_BATCHES * 1_000;
  const refused = await admit("b65", NOW_MS + 90_000);
  assert.deepEqual(refused, { tokens: 10 * MOST_CHUNKED_BATCHES, earliestMs: NOW_MS + 61_000, latestMs });
  assert.equal(await admin.zcard(key), MOST_CHUNKED_BATCHES, "the 65th is not listed");
  assert.equal(await admin.hlen(rests), MOST_CHUNKED_BATCHES);
  // The keys live until the latest deadline (plus the margin), not the last admitted one's.
  const ttlMs = await admin.pttl(key);
  assert.ok(ttlMs > latestMs - NOW_MS && ttlMs <= latestMs - NOW_MS + CHUNKED_BATCHES_KEEP_MS, `ttl ${ttlMs} ms`);

  shared.end(SCOPE, "b10");
  assert.equal(await admit("b65", NOW_MS + 90_000), true, "an ended batch frees its place");
  assert.notEqual(await admit("b66", NOW_MS + 90_000), true, "full again");
  // Past the first deadline (b1's), its entry lapses: the next takes its place, and the lapsed one is gone from both.
  assert.equal(await admit("b66", NOW_MS + 150_000, NOW_MS + 61_000), true, "a lapsed batch frees its place");
  assert.equal(await admin.zscore(key, "b1"), null);
  assert.equal(await admin.hget(rests, "b1"), null);
  // A rest told for an ended batch does not bring it back.
  shared.setRest(SCOPE, "b10", 5);
  assert.equal(await admin.zcard(key), MOST_CHUNKED_BATCHES);
  assert.equal(await admin.hget(rests, "b10"), null);

  // A client's name with braces: both keys in one Cluster slot (their hash tag has its braces replaced).
  const [braced, bracedRests] = chunkedBatchesKeys(prefix, "client:a{b}c");
  assert.equal(hashSlot(braced), hashSlot(bracedRests));
  assert.equal(hashPartOf(braced), "a_b_c");
  assert.equal(await admit("x", NOW_MS + 90_000, NOW_MS, "client:a{b}c"), true);
  assert.equal(await admin.zcard(braced), 1);
});

test("a process's own batches sent with a check: listed again when Redis lost them, their rests set, lapsed ones not", {
  skip: isRedisInstalled() ? false : REDIS_MISSING,
}, async (t) => {
  const redis = await useRedisServer(t);
  const prefix = "chunked-own:";
  const state = await useRedisState(t, redis.url, new ManualClock(NOW_MS), prefix);
  const shared = state.chunkedBatches;
  assert.ok(shared !== undefined);
  const admin = new Redis(redis.url);
  t.after(() => admin.disconnect());
  const [key, rests] = chunkedBatchesKeys(prefix, SCOPE);
  const tight: WindowTerms = { ...ROOMY, limit: 1_000, remaining: 1_000 };
  assert.equal(
    await shared.admit(SCOPE, { id: "a", tokens: 900, deadlineMs: NOW_MS + 30_000 }, [tight], NONE, [], NOW_MS),
    true,
  );
  await admin.flushall();
  // The process still runs `a` (600 left) and knew `gone` (lapsed): `a` is listed again and counted; `gone` is not.
  const running = { id: "a", tokens: 600, deadlineMs: NOW_MS + 30_000 };
  const own = [running, { id: "gone", tokens: 100, deadlineMs: NOW_MS - 1 }];
  const verdict = await shared.admit(
    SCOPE,
    { id: "b", tokens: 500, deadlineMs: NOW_MS + 40_000 },
    [tight],
    NONE,
    own,
    NOW_MS,
  );
  assert.deepEqual(verdict, { tokens: 600, earliestMs: NOW_MS + 30_000, latestMs: NOW_MS + 30_000 });
  assert.deepEqual(await admin.zrange(key, "0", "-1"), ["a"]);
  assert.equal(await admin.hget(rests, "a"), "600");
  const ttlMs = await admin.pttl(rests);
  assert.ok(ttlMs > 29_000 && ttlMs <= 30_000 + CHUNKED_BATCHES_KEEP_MS, `kept until a's deadline: ${ttlMs} ms`);
  // Listed with a stale rest (an admission that ran past its sender's timeout): the process's check sets it.
  const fits = await shared.admit(
    SCOPE,
    { id: "c", tokens: 700, deadlineMs: NOW_MS + 40_000 },
    [tight],
    NONE,
    [{ ...running, tokens: 300 }],
    NOW_MS,
  );
  assert.equal(fits, true);
  assert.equal(await admin.hget(rests, "a"), "300");
});
