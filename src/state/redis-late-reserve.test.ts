// A reserve that times out on the gateway is not cancelled in Redis: a paused (or overloaded) Redis runs it when
// it resumes. The request was sent upstream on the local fallback meanwhile, and that fallback is replayed into
// Redis later. These tests pause a real redis-server so that both happen, and require the request to count once
// and its concurrency lease to end with its release.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import {
  isRedisInstalled,
  REDIS_MISSING,
  redisStateSettings,
  useRedisServer,
} from "../../test/helpers/redis-server.ts";
import { systemClock } from "../clock.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import { buildConfig } from "../config/load.ts";
import { AvailabilityBook } from "../limits/availability.ts";
import { type BudgetScope, isReservation, type Reservation, rulesFromLimits } from "../limits/budgets.ts";
import { budgetKeyBase } from "./redis-keys.ts";
import { createRedisStateBackend } from "./redis-state.ts";

const skip = isRedisInstalled() ? false : REDIS_MISSING;
const PREFIX = "late:";

async function startBackend(t: TestContext, url: string) {
  const availability = new AvailabilityBook(systemClock, buildConfig({}, undefined, { env: {} }).config.cooldowns);
  const state = await createRedisStateBackend(
    redisStateSettings(url, PREFIX),
    availability,
    systemClock,
    undefined,
    // Renewals and replays every 2 s; a leaked lease would block for 6 s, longer than any wait below.
    { leaseTtlMs: 6_000 },
  );
  t.after(() => state.close());
  return state;
}

async function inspector(t: TestContext, url: string): Promise<Redis> {
  const redis = new Redis(url);
  // disconnect, not quit: the Redis server's cleanup, registered first, has stopped it by then, and a QUIT queued
  // behind a command waits through ioredis's reconnections for ever (the file never exits).
  t.after(() => redis.disconnect());
  return redis;
}

function scope(id: string, limits: Parameters<typeof rulesFromLimits>[0]): BudgetScope {
  return { id, ...rulesFromLimits(limits), dayReset: UTC_MIDNIGHT };
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** The requests Redis counts for `id` in its minute window and in today's counter. */
async function counted(redis: Redis, id: string): Promise<{ minute: number; day: number }> {
  const base = budgetKeyBase(PREFIX, id);
  const minute = Number((await redis.hget(`${base}:win:60000:runs`, "r")) ?? 0);
  const [dayKey] = await redis.keys(`${base}:day:*`);
  const day = dayKey === undefined ? 0 : Number((await redis.hget(dayKey, "requests")) ?? 0);
  return { minute, day };
}

describe("a reserve that times out and runs in Redis later", { skip }, () => {
  test("one timed-out reserve (Redis stays up): the request counts once, not again by the replay", async (t) => {
    const server = await useRedisServer(t);
    const state = await startBackend(t, server.url);
    const redis = await inspector(t, server.url);
    const limited = scope("provider:once", { rpm: 100, rpd: 1_000 });
    assert.ok(isReservation(await state.ledger.reserve([limited], { tokens: 0 }, Date.now())));
    server.pause();
    t.after(() => server.resume());
    const late = await state.ledger.reserve([limited], { tokens: 0 }, Date.now());
    assert.ok(isReservation(late), "fell back to the local book");
    assert.equal(state.ledger.unsyncedCount, 1);
    server.resume();
    await waitFor(() => state.ledger.unsyncedCount === 0, 5_000, "the replay");
    assert.deepEqual(await counted(redis, limited.id), { minute: 2, day: 2 });
  });

  test("a hung Redis during several requests: each counts once, whether its reserve ran late or not", async (t) => {
    const server = await useRedisServer(t);
    const state = await startBackend(t, server.url);
    const redis = await inspector(t, server.url);
    const limited = scope("provider:many", { rpm: 100, rpd: 1_000 });
    assert.ok(isReservation(await state.ledger.reserve([limited], { tokens: 0 }, Date.now())));
    assert.ok(isReservation(await state.ledger.reserve([limited], { tokens: 0 }, Date.now())));
    server.pause();
    t.after(() => server.resume());
    // The first three time out (their scripts wait in Redis), then Redis counts as down: two more stay local.
    for (let index = 0; index < 5; index++) {
      assert.ok(isReservation(await state.ledger.reserve([limited], { tokens: 0 }, Date.now())));
    }
    assert.equal(state.status().isDegraded, true);
    server.resume();
    await waitFor(() => !state.status().isDegraded, 5_000, "Redis back");
    await waitFor(() => state.ledger.unsyncedCount === 0, 5_000, "the replay");
    assert.deepEqual(await counted(redis, limited.id), { minute: 7, day: 7 });
  });

  test("concurrency 1: a timed-out reserve's late lease ends with its release", async (t) => {
    const server = await useRedisServer(t);
    const first = await startBackend(t, server.url);
    const second = await startBackend(t, server.url);
    const redis = await inspector(t, server.url);
    const single = scope("provider:single", { concurrency: 1 });
    const leases = `${budgetKeyBase(PREFIX, single.id)}:leases`;
    server.pause();
    t.after(() => server.resume());
    const late = await first.ledger.reserve([single], { tokens: 0 }, Date.now());
    assert.ok(isReservation(late));
    server.resume();
    await waitFor(async () => (await redis.zcard(leases)) === 1, 2_000, "the late reserve to take its lease");
    first.ledger.release(late);
    await waitFor(async () => (await redis.zcard(leases)) === 0, 1_000, "the release to free the slot");
    assert.ok(isReservation(await second.ledger.reserve([single], { tokens: 0 }, Date.now())));
  });

  test("concurrency 1: released while Redis is down, the late lease is removed by the replay", async (t) => {
    const server = await useRedisServer(t);
    const first = await startBackend(t, server.url);
    const second = await startBackend(t, server.url);
    const redis = await inspector(t, server.url);
    const single = scope("provider:down", { concurrency: 1 });
    const leases = `${budgetKeyBase(PREFIX, single.id)}:leases`;
    server.pause();
    t.after(() => server.resume());
    const held: Reservation[] = [];
    // The first reserve's script takes the slot once Redis resumes; Redis counts as down after the third.
    for (let index = 0; index < 3; index++) {
      const result = await first.ledger.reserve([single], { tokens: 0 }, Date.now());
      assert.ok(isReservation(result));
      first.ledger.release(result);
      held.push(result);
    }
    assert.equal(first.status().isDegraded, true);
    server.resume();
    await waitFor(() => !first.status().isDegraded, 5_000, "Redis back");
    await waitFor(() => first.ledger.unsyncedCount === 0, 5_000, "the replay");
    await waitFor(async () => (await redis.zcard(leases)) === 0, 1_000, "the late lease to be removed");
    assert.ok(isReservation(await second.ledger.reserve([single], { tokens: 0 }, Date.now())));
  });
});
