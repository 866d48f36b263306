// The window algorithms in the Redis ledger, against a real redis-server: the same table as BudgetBook's
// (test/helpers/window-algorithm-cases.ts), so a bucket's refill is used as it comes, a fixed window reopens at its
// boundary and a sliding one does neither, fleet-wide. Then the same through two processes sharing one Redis, and
// a replay after an outage that never moves a counter back.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { runWindowCase, T0, WINDOW_CASES } from "../../test/helpers/window-algorithm-cases.ts";
import { ManualClock } from "../clock.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import { buildConfig } from "../config/load.ts";
import { AvailabilityBook } from "../limits/availability.ts";
import { type BudgetScope, isReservation, rulesFromLimits } from "../limits/budgets.ts";
import { createRedisStateBackend } from "./redis-state.ts";

const skip = isRedisInstalled() ? false : REDIS_MISSING;
const COOLDOWN_DEFAULTS = buildConfig({}, undefined, { env: {} }).config.cooldowns;

async function ledgerOf(t: TestContext, url: string, prefix: string) {
  const clock = new ManualClock(T0);
  const state = await createRedisStateBackend(
    { path: "", redisUrl: url, redisKeyPrefix: prefix, redisCluster: false, flushIntervalMs: 1_000 },
    new AvailabilityBook(clock, COOLDOWN_DEFAULTS),
    clock,
    { info: () => {}, warn: () => {} },
    {},
  );
  t.after(() => state.close());
  assert.equal(state.status().isDegraded, false, "Redis is up: reserve goes to the script");
  return state.ledger;
}

describe("window algorithms in the Redis ledger", { skip }, () => {
  test("the shared table: the same admissions, refusals and retry times as BudgetBook", async (t) => {
    const server = await useRedisServer(t);
    for (const [index, windowCase] of WINDOW_CASES.entries()) {
      const ledger = await ledgerOf(t, server.url, `windows-${index}:`);
      await t.test(windowCase.name, () => runWindowCase(ledger, windowCase, "RedisLedger"));
    }
  });

  test("two processes share one bucket and one fixed window: the refill and the boundary are the fleet's", async (t) => {
    const server = await useRedisServer(t);
    const first = await ledgerOf(t, server.url, "fleet:");
    const second = await ledgerOf(t, server.url, "fleet:");
    const bucket: BudgetScope = {
      id: "deployment:groq/m",
      ...rulesFromLimits({ rpm: 4, window: "bucket" }),
      dayReset: UTC_MIDNIGHT,
    };
    const fixed: BudgetScope = {
      id: "deployment:openrouter/m",
      ...rulesFromLimits({ rpm: 4, window: "fixed" }),
      dayReset: UTC_MIDNIGHT,
    };
    for (const scope of [bucket, fixed]) {
      for (const ledger of [first, second, first, second]) {
        assert.ok(isReservation(await ledger.reserve([scope], { tokens: 0 }, T0 + 30_000)));
      }
      // The second process has sent only two, but the shared count is four.
      const denied = await second.reserve([scope], { tokens: 0 }, T0 + 30_000);
      assert.ok(!isReservation(denied), `${scope.id}: the fleet's fifth request in the window`);
    }
    // 15 s later the bucket has one request back (4 a minute) for either process; the fixed minute has not reopened.
    assert.ok(isReservation(await second.reserve([bucket], { tokens: 0 }, T0 + 45_000)));
    assert.ok(!isReservation(await first.reserve([bucket], { tokens: 0 }, T0 + 45_000)));
    const fixedDenied = await first.reserve([fixed], { tokens: 0 }, T0 + 45_000);
    assert.ok(!isReservation(fixedDenied) && fixedDenied.retryAtMs === T0 + 60_000);
    for (const ledger of [first, second, first, second]) {
      assert.ok(isReservation(await ledger.reserve([fixed], { tokens: 0 }, T0 + 60_000)), "all four at the minute");
    }
  });
});
