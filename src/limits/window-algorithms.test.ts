// Each window algorithm against an injected clock: a bucket's refill is used as it comes, a fixed window
// reopens at its boundary, a sliding one does neither. The shared table (test/helpers/window-algorithm-cases.ts)
// runs here against BudgetBook and in src/state/redis-window-algorithms.test.ts against the Redis ledger.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runWindowCase, WINDOW_CASES } from "../../test/helpers/window-algorithm-cases.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import type { Limits } from "../config/types.ts";
import { BudgetBook, type BudgetScope, isReservation, rulesFromLimits } from "./budgets.ts";

/** 2026-01-01T12:00:00Z */
const T0 = Date.UTC(2026, 0, 1, 12);
const MINUTE_MS = 60_000;

function scopeOf(limits: Limits, id = "deployment:p/m"): BudgetScope {
  return { id, ...rulesFromLimits(limits), dayReset: UTC_MIDNIGHT };
}

function fill(book: BudgetBook, scope: BudgetScope, count: number, atMs: number, tokens = 0): void {
  for (let index = 0; index < count; index++) {
    assert.ok(isReservation(book.reserve([scope], { tokens }, atMs)), `request ${index + 1} at ${atMs - T0} ms`);
  }
}

function isAllowed(book: BudgetBook, scope: BudgetScope, atMs: number, tokens = 0): boolean {
  return book.check([scope], { tokens }, atMs).isAllowed;
}

function retryAt(book: BudgetBook, scope: BudgetScope, atMs: number, tokens = 0): number {
  const verdict = book.check([scope], { tokens }, atMs);
  assert.ok(!verdict.isAllowed, "expected a denial");
  return verdict.retryAtMs;
}

describe("window algorithms", () => {
  it("sliding (the default): room comes back only as each request leaves its own window", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpm: 10 });
    fill(book, scope, 10, T0 + 50_000);
    assert.equal(isAllowed(book, scope, T0 + MINUTE_MS), false, "no reopening at the minute");
    assert.equal(isAllowed(book, scope, T0 + 60_000 + 49_999), false);
    assert.equal(retryAt(book, scope, T0 + MINUTE_MS), T0 + 50_000 + MINUTE_MS);
    assert.equal(isAllowed(book, scope, T0 + 50_000 + MINUTE_MS), true);
  });

  it("fixed: the whole limit reopens at the clock's minute boundary, and not a millisecond before", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpm: 10, window: "fixed" });
    fill(book, scope, 10, T0 + 50_000);
    assert.equal(isAllowed(book, scope, T0 + MINUTE_MS - 1), false);
    assert.equal(retryAt(book, scope, T0 + 55_000), T0 + MINUTE_MS);
    fill(book, scope, 10, T0 + MINUTE_MS);
    assert.equal(isAllowed(book, scope, T0 + MINUTE_MS + 1), false, "the new window is full again");
    const usage = book.usage(scope, T0 + MINUTE_MS + 1)[0];
    assert.equal(usage?.algorithm, "fixed");
    assert.equal(usage?.used, 10);
    assert.equal(usage?.resetsAtMs, T0 + 2 * MINUTE_MS);
  });

  it("fixed with an offset: windows start that many ms after the boundary", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpm: 2, window: "fixed", windowOffsetMs: 30_000 });
    fill(book, scope, 2, T0 + 10_000);
    assert.equal(retryAt(book, scope, T0 + 10_000), T0 + 30_000);
    assert.equal(isAllowed(book, scope, T0 + 29_999), false);
    assert.equal(isAllowed(book, scope, T0 + 30_000), true);
  });

  it("bucket: refilled continuously, each refilled request is usable as soon as it is back", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpm: 60, window: "bucket" });
    fill(book, scope, 60, T0);
    assert.equal(isAllowed(book, scope, T0 + 999), false);
    assert.equal(retryAt(book, scope, T0 + 500), T0 + 1_000, "one request refills per second");
    fill(book, scope, 1, T0 + 1_000);
    assert.equal(isAllowed(book, scope, T0 + 1_000), false, "the refilled one was used; nothing more");
    // Ten seconds later, ten more are back (and no more).
    fill(book, scope, 10, T0 + 11_000);
    assert.equal(isAllowed(book, scope, T0 + 11_000), false);
    // A sliding window with the same limit would still refuse until T0 + 60 s.
    const sliding = new BudgetBook();
    const slidingScope = scopeOf({ rpm: 60 });
    fill(sliding, slidingScope, 60, T0);
    assert.equal(isAllowed(sliding, slidingScope, T0 + 11_000), false);
  });

  it("bucket: an idle bucket holds at most its limit (no credit beyond a full bucket)", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpm: 5, window: "bucket" });
    fill(book, scope, 5, T0 + 10 * MINUTE_MS);
    assert.equal(isAllowed(book, scope, T0 + 10 * MINUTE_MS), false);
  });

  it("token bucket: reconcile moves the debt, so tokens the answer did not use are back at once", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ tpm: 6_000, window: "bucket" });
    const reservation = book.reserve([scope], { tokens: 5_000 }, T0);
    assert.ok(isReservation(reservation));
    assert.equal(isAllowed(book, scope, T0, 2_000), false);
    book.reconcile(reservation, 1_000, T0 + 10);
    assert.equal(isAllowed(book, scope, T0 + 10, 2_000), true);
    // 6000 tokens a minute refill at 100 per second (0.1 per ms): 999 owed at T0 + 10 ms, + 5000 = 5999, so
    // 1000 more fit once 999 have refilled: 9.99 s later.
    const big = book.reserve([scope], { tokens: 5_000 }, T0 + 10);
    assert.ok(isReservation(big));
    assert.equal(retryAt(book, scope, T0 + 10, 1_000), T0 + 10 + 9_990);
  });

  it("a model's limits inherit the provider's window algorithm unless they name their own", () => {
    const provider: Limits = { window: "bucket" };
    assert.equal(rulesFromLimits({ rpm: 30 }, provider).rules[0]?.algorithm, "bucket");
    assert.equal(rulesFromLimits({ rpm: 30, window: "fixed" }, provider).rules[0]?.algorithm, "fixed");
    // Day and month windows are the provider's wall clock whatever the algorithm.
    assert.equal(rulesFromLimits({ rpd: 30 }, provider).rules[0]?.algorithm, undefined);
  });

  it("fixed counters and buckets survive export and import", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpm: 3, tpm: 100, window: "fixed" });
    const bucketScope = scopeOf({ rpm: 3, window: "bucket" }, "deployment:p/b");
    fill(book, scope, 3, T0 + 1_000, 10);
    fill(book, bucketScope, 3, T0 + 1_000);
    const restored = new BudgetBook();
    for (const id of [scope.id, bucketScope.id]) {
      const exported = book.exportScope(id);
      assert.ok(exported !== undefined);
      restored.importScope(id, JSON.parse(JSON.stringify(exported)));
    }
    assert.equal(isAllowed(restored, scope, T0 + 2_000), false);
    assert.equal(isAllowed(restored, scope, T0 + MINUTE_MS), true);
    assert.equal(isAllowed(restored, bucketScope, T0 + 2_000), false);
    assert.equal(isAllowed(restored, bucketScope, T0 + 21_000), true, "one of three per minute is back after 20 s");
  });
});

describe("window algorithms, the shared table (BudgetBook)", () => {
  for (const windowCase of WINDOW_CASES) {
    it(windowCase.name, () => runWindowCase(new BudgetBook(), windowCase, "BudgetBook"));
  }
});
