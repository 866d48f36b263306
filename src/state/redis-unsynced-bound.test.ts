// The reservations kept for a replay are bounded (MAX_UNSYNCED); on a Redis Cluster one master's long outage fills
// that bound with its providers' reservations, and must not push out those of a provider on another master (served
// locally for a while too), which then would never reach Redis. No Redis is needed: every reserve here is served
// locally, its provider's master marked down on the link.
import assert from "node:assert/strict";
import { test } from "node:test";
import { systemClock } from "../clock.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import { type BudgetScope, isReservation, rulesFromLimits } from "../limits/budgets.ts";
import { createCommandClient } from "./redis-client.ts";
import { RedisDataEpoch } from "./redis-data-epoch.ts";
import { MAX_UNSYNCED, RedisLedger } from "./redis-ledger.ts";
import { RedisLink } from "./redis-link.ts";
import { FAILURES_BEFORE_DOWN } from "./redis-slot-groups.ts";

function scopesOf(provider: string): BudgetScope[] {
  return [{ id: `provider:${provider}`, ...rulesFromLimits({ rpm: 100_000_000 }), dayReset: UTC_MIDNIGHT }];
}

test("a Cluster master's long outage keeps the bound to its own providers' oldest: another's replays stay", () => {
  // Never connected (lazy): nothing here reaches it.
  const redis = createCommandClient("redis://127.0.0.1:1", true);
  const link = new RedisLink(
    "redis://127.0.0.1:1 (cluster)",
    undefined,
    () => Date.now(),
    () => true,
    true,
  );
  link.markUp();
  const down = (scopeId: string) => {
    for (let failure = 0; failure < FAILURES_BEFORE_DOWN; failure++)
      link.recordFailure(new Error("timed out"), scopeId);
  };
  const ledger = new RedisLedger({
    redis,
    link,
    keyPrefix: "bound:",
    clock: systemClock,
    dataEpoch: new RedisDataEpoch(redis, "bound:"),
  });
  const nowMs = Date.now();
  // Served locally, so at once (no Promise): the master of its provider is down.
  const reserveLocally = (provider: string) => {
    const result = ledger.reserve(scopesOf(provider), { tokens: 0 }, nowMs);
    assert.ok(!(result instanceof Promise) && isReservation(result), `${provider}: reserved locally`);
  };
  // beta's master did not answer for a moment: five reservations wait for its return.
  down("provider:beta");
  for (let request = 0; request < 5; request++) {
    reserveLocally("beta");
  }
  // alpha's master is down for long, under load: more reservations than the bound.
  down("provider:alpha");
  for (let request = 0; request < MAX_UNSYNCED + 500; request++) {
    reserveLocally("alpha");
  }
  assert.ok(ledger.unsyncedCount <= MAX_UNSYNCED, `bounded: ${ledger.unsyncedCount}`);
  assert.equal(ledger.unsyncedCountOf("provider:beta"), 5, "beta's reservations all kept for its replay");
  assert.ok(ledger.unsyncedCountOf("provider:alpha") >= MAX_UNSYNCED - 200, "alpha keeps the rest of the bound");
  redis.disconnect();
});
