// The window algorithms in the Redis ledger, against a real redis-server: the same table as BudgetBook's
// (test/helpers/window-algorithm-cases.ts), so a bucket's refill is used as it comes, a fixed window reopens at its
// boundary and a sliding one does neither, fleet-wide. Then the same through two processes sharing one Redis, and
// a replay after an outage that never moves a counter back.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { useRedisState } from "../../test/helpers/redis-state.ts";
import { runWindowCase, T0, WINDOW_CASES } from "../../test/helpers/window-algorithm-cases.ts";
import { ManualClock } from "../clock.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import { type BudgetScope, isReservation, rulesFromLimits } from "../limits/budgets.ts";

const skip = isRedisInstalled() ? false : REDIS_MISSING;

function backendOf(t: TestContext, url: string, prefix: string, leaseTtlMs?: number) {
  return useRedisState(t, url, new ManualClock(T0), prefix, leaseTtlMs);
}

async function ledgerOf(t: TestContext, url: string, prefix: string) {
  return (await backendOf(t, url, prefix)).ledger;
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

function scopeOf(id: string, limits: Parameters<typeof rulesFromLimits>[0]): BudgetScope {
  return { id, ...rulesFromLimits(limits), dayReset: UTC_MIDNIGHT };
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

  test("a replay after an outage does not count in a fixed window that has ended since", async (t) => {
    const server = await useRedisServer(t);
    const fixed = scopeOf("deployment:replayed/fixed", { rpm: 4, window: "fixed" });
    const other = await ledgerOf(t, server.url, "replayed:");
    // Another process has already counted a request in the next minute.
    assert.ok(isReservation(await other.reserve([fixed], { tokens: 0 }, T0 + 70_000)));
    // This one sends a request stamped in the minute before while Redis hangs (served locally), replayed once Redis
    // answers. (A hung Redis may also run the timed-out reserve itself when it wakes: that one is dropped too.)
    const late = await backendOf(t, server.url, "replayed:", 300);
    server.pause();
    assert.ok(isReservation(await late.ledger.reserve([fixed], { tokens: 0 }, T0 + 50_000)), "served locally");
    assert.equal(late.ledger.unsyncedCount, 1);
    server.resume();
    await waitFor(() => late.ledger.unsyncedCount === 0, 5_000, "the replay");
    // The minute from T0 + 60 s still holds exactly 1: a counter moved back to T0's minute would leave 4.
    for (let index = 0; index < 3; index++) {
      assert.ok(isReservation(await other.reserve([fixed], { tokens: 0 }, T0 + 70_001)), `request ${index + 2}`);
    }
    const full = await other.reserve([fixed], { tokens: 0 }, T0 + 70_001);
    assert.ok(!isReservation(full), "the minute is full");
    assert.match(full.reason, /over its rpm budget \(4\/4\)/);
  });
});
