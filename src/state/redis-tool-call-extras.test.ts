// The kept tool-call extras in a real Redis: each client's values within its byte budget (its oldest evicted, no other
// client's), and a look-up bounded in keys (the newest) and in bytes, in MGETs of a bounded size.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { closeWhenTestEnds } from "../../test/helpers/late-start.ts";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { redisLookUps } from "../../test/helpers/replica-scenes.ts";
import { ManualClock } from "../clock.ts";
import {
  MAX_LOOKUP_KEYS,
  MGET_BATCH_KEYS,
  REDIS_TOOL_CALL_EXTRAS_LIMITS,
  RedisToolCallExtras,
  type RedisToolCallExtrasLimits,
} from "./redis-tool-call-extras.ts";
import { REDIS_KEY_COST_BYTES } from "./redis-tool-call-extras-lua.ts";
import { clientScope, MemoryToolCallExtras, TOOL_CALL_EXTRAS_LIMITS } from "./tool-call-extras.ts";

/**
 * ms a test's store waits for a command: no test here is about a slow Redis, and under a loaded CI machine the
 * default 200 ms timed out a setup script writing 1,000 values ("a large value evicts ...": Command timed out), or an
 * MGET, which a look-up then counts as not found.
 */
const TEST_COMMAND_TIMEOUT_MS = 10_000;

/** A replica's store on `url`, with a memory store of its own in front (another replica's finds nothing there). */
async function replica(
  t: TestContext,
  url: string,
  limits: Partial<RedisToolCallExtrasLimits> = {},
): Promise<RedisToolCallExtras> {
  const local = new MemoryToolCallExtras(TOOL_CALL_EXTRAS_LIMITS, new ManualClock());
  const store = new RedisToolCallExtras(url, "kept:", false, local, {
    ...REDIS_TOOL_CALL_EXTRAS_LIMITS,
    commandTimeoutMs: TEST_COMMAND_TIMEOUT_MS,
    ...limits,
  });
  await closeWhenTestEnds(t, () => store.close());
  await store.connect();
  return store;
}

const value = (text: string) => ({ reasoning_details: [{ type: "reasoning.text", text }] });
const alice = clientScope("alice");
const bob = clientScope("bob");
const orderKey = `kept:{tool-call-extras:${alice.slice(0, -1)}}#order`;

describe("kept tool-call extras in Redis", { skip: isRedisInstalled() ? false : REDIS_MISSING }, () => {
  test("a client's values stay within its byte budget: its oldest go, another client's stay, every key expires", async (t) => {
    const redis = await useRedisServer(t);
    const { admin } = await redisLookUps(t, redis.url);
    const budget = 20_000;
    const store = await replica(t, redis.url, { maxClientBytes: budget });
    await store.remember([{ id: `${bob}first`, extra: value("b".repeat(1_000)) }]);
    // Two writers at once for one client (two replicas): the script keeps the bound between them too.
    const other = await replica(t, redis.url, { maxClientBytes: budget });
    for (let turn = 0; turn < 50; turn += 2) {
      await Promise.all([
        store.remember([{ id: `${alice}call-${turn}`, extra: value("a".repeat(1_000)) }]),
        other.remember([{ id: `${alice}call-${turn + 1}`, extra: value("a".repeat(1_000)) }]),
      ]);
    }
    const aliceKeys = await admin.keys(`kept:{tool-call-extras:${alice.slice(0, -1)}}:*`);
    let aliceBytes = 0;
    for (const key of aliceKeys) aliceBytes += (await admin.strlen(key)) + key.length;
    assert.ok(aliceBytes <= budget + 2_000, `alice holds ${aliceBytes} bytes in ${aliceKeys.length} keys`);
    const counted = 1_100 + REDIS_KEY_COST_BYTES; // each value: its id, its JSON, and Redis's own cost of a key
    assert.ok(aliceKeys.length >= Math.floor(budget / counted), `alice's newest are kept: ${aliceKeys.length} keys`);
    const reader = await replica(t, redis.url, { maxClientBytes: budget });
    const found = await reader.recall([`${alice}call-0`, `${alice}call-49`, `${alice}call-48`, `${bob}first`]);
    assert.deepEqual([...found.keys()].sort(), [`${alice}call-48`, `${alice}call-49`, `${bob}first`]);
    for (const key of await admin.keys("kept:*")) {
      const ttlMs = await admin.pttl(key);
      assert.ok(ttlMs > 0 && ttlMs <= REDIS_TOOL_CALL_EXTRAS_LIMITS.ttlMs, `${key} expires (PTTL ${ttlMs})`);
    }
  });

  test("a value kept again replaces its bytes in the total, not adds to them", async (t) => {
    const redis = await useRedisServer(t);
    const { admin } = await redisLookUps(t, redis.url);
    const store = await replica(t, redis.url, { maxClientBytes: 5_000 });
    for (let time = 0; time < 20; time++) {
      await store.remember([{ id: `${alice}same`, extra: value("a".repeat(1_000)) }]);
    }
    await store.remember([{ id: `${alice}next`, extra: value("a".repeat(1_000)) }]);
    const reader = await replica(t, redis.url);
    assert.equal((await reader.recall([`${alice}same`, `${alice}next`])).size, 2, "nothing was evicted");
    const total = Number(await admin.get(`kept:{tool-call-extras:${alice.slice(0, -1)}}#bytes`));
    const keyCosts = 2 * REDIS_KEY_COST_BYTES;
    assert.ok(total > 2_000 + keyCosts && total < 2_300 + keyCosts, `the total counts two values: ${total}`);
  });

  test("a client's many small values hold about its budget of Redis's memory, not Redis's own cost of each key many times over", async (t) => {
    const redis = await useRedisServer(t);
    const { admin } = await redisLookUps(t, redis.url);
    // Its keys' memory: Lua's own heap (counted in used_memory too) grows with a script's arguments, then is reused.
    const usedMemory = async () => {
      const info = String(await admin.info("memory"));
      return Number(/used_memory:(\d+)/.exec(info)?.[1]) - Number(/used_memory_lua:(\d+)/.exec(info)?.[1]);
    };
    const budget = 200_000;
    const store = await replica(t, redis.url, { maxClientBytes: budget });
    const before = await usedMemory();
    for (let start = 0; start < 20_000; start += 1_000) {
      await store.remember(
        Array.from({ length: 1_000 }, (_, index) => ({ id: `${alice}c${start + index}`, extra: {} })),
      );
    }
    const grown = (await usedMemory()) - before;
    assert.ok(grown <= 2 * budget, `alice's ${await admin.zcard(orderKey)} values took ${grown} bytes of Redis`);
  });

  test("a large value evicts a bounded number of small ones in its one script (Redis runs nothing else meanwhile)", async (t) => {
    const redis = await useRedisServer(t);
    const { admin } = await redisLookUps(t, redis.url);
    const budget = 200_000;
    const store = await replica(t, redis.url, { maxClientBytes: budget });
    for (let start = 0; start < 20_000; start += 1_000) {
      await store.remember(
        Array.from({ length: 1_000 }, (_, index) => ({ id: `${alice}c${start + index}`, extra: {} })),
      );
    }
    const before = await admin.zcard(orderKey);
    const large = 100_000;
    await store.remember([{ id: `${alice}large`, extra: value("x".repeat(large)) }]);
    const evicted = before + 1 - (await admin.zcard(orderKey));
    assert.ok(evicted > 0 && evicted <= large / 256, `one value of ${large} bytes evicted ${evicted} values`);
  });

  for (const lost of ["#order", "#sizes", "#bytes"]) {
    test(`its ${lost} gone alone (a maxmemory policy evicted it): the bookkeeping starts again, not every new value evicted at once`, async (t) => {
      const redis = await useRedisServer(t);
      const { admin } = await redisLookUps(t, redis.url);
      const store = await replica(t, redis.url, { maxClientBytes: 20_000 });
      const keep = async (from: number, to: number) => {
        for (let index = from; index < to; index++) {
          await store.remember([{ id: `${alice}call-${index}`, extra: value("a".repeat(1_000)) }]);
        }
      };
      await keep(0, 40);
      const tagKey = orderKey.slice(0, -"#order".length);
      await admin.del(`${tagKey}${lost}`);
      await keep(40, 80);
      const reader = await replica(t, redis.url);
      const found = await reader.recall([`${alice}call-78`, `${alice}call-79`]);
      assert.equal(found.size, 2, "the newest are kept");
      const sizes = (await admin.hvals(`${tagKey}#sizes`)).reduce((sum, size) => sum + Number(size), 0);
      assert.equal(Number(await admin.get(`${tagKey}#bytes`)), sizes, "the total is its sizes' sum");
      assert.equal(await admin.zcard(orderKey), await admin.hlen(`${tagKey}#sizes`), "each value in order has a size");
    });
  }

  test("a look-up of thousands of ids reads the newest, in MGETs of a bounded size", async (t) => {
    const redis = await useRedisServer(t);
    const { mgetCalls } = await redisLookUps(t, redis.url);
    const writer = await replica(t, redis.url);
    const ids = Array.from({ length: 3_000 }, (_, index) => `${alice}call-${index}`);
    for (let start = 0; start < ids.length; start += 500) {
      await writer.remember(ids.slice(start, start + 500).map((id) => ({ id, extra: value("s") })));
    }
    const reader = await replica(t, redis.url);
    const before = await mgetCalls();
    const found = await reader.recall(ids);
    assert.equal(found.size, MAX_LOOKUP_KEYS);
    assert.ok(found.has(ids.at(-1) ?? ""), "the newest is found");
    assert.ok(!found.has(ids.at(-MAX_LOOKUP_KEYS - 1) ?? ""), "one past the bound is not looked up");
    assert.equal((await mgetCalls()) - before, MAX_LOOKUP_KEYS / MGET_BATCH_KEYS);
  });

  test("a history naming one call thousands of times still looks up its other calls, each once", async (t) => {
    const redis = await useRedisServer(t);
    const writer = await replica(t, redis.url);
    const ids = Array.from({ length: 1_000 }, (_, index) => `${alice}call-${index}`);
    await writer.remember(ids.map((id) => ({ id, extra: value("s") })));
    const reader = await replica(t, redis.url);
    const repeated = ids.at(0) ?? "";
    const found = await reader.recall([...ids, ...Array.from({ length: 3_000 }, () => repeated)]);
    assert.equal(found.size, ids.length);
  });

  test("a look-up stops once it read its bytes bound, the newest kept", async (t) => {
    const redis = await useRedisServer(t);
    const writer = await replica(t, redis.url);
    const ids = Array.from({ length: 20 }, (_, index) => `${alice}big-${index}`);
    for (const id of ids) await writer.remember([{ id, extra: value("x".repeat(10_000)) }]);
    const reader = await replica(t, redis.url, { maxLookupBytes: 55_000 });
    const found = await reader.recall(ids);
    assert.deepEqual([...found.keys()].sort(), ids.slice(-5).sort());
  });
});
