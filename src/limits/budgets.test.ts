import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type DayReset, parseDayReset, UTC_MIDNIGHT } from "../config/day-reset.ts";
import type { Limits } from "../config/types.ts";
import { isNeverFit } from "./budget-types.ts";
import {
  BudgetBook,
  type BudgetScope,
  type BudgetVerdict,
  isReservation,
  type Reservation,
  rulesFromLimits,
} from "./budgets.ts";

/** 2026-01-01T12:00:00Z */
const T0 = Date.UTC(2026, 0, 1, 12);
const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

function scopeOf(limits: Limits, id = "deployment:p/m", dayReset: DayReset = UTC_MIDNIGHT): BudgetScope {
  const { rules, concurrency } = rulesFromLimits(limits);
  return { id, rules, concurrency, dayReset };
}

function reserveOk(book: BudgetBook, scopes: readonly BudgetScope[], tokens: number, nowMs: number): Reservation {
  const result = book.reserve(scopes, { tokens }, nowMs);
  assert.ok(
    isReservation(result),
    `expected a reservation at ${new Date(nowMs).toISOString()}: ${JSON.stringify(result)}`,
  );
  return result;
}

function denied(verdict: BudgetVerdict | Reservation): { reason: string; retryAtMs: number; scopeId: string } {
  assert.ok(!isReservation(verdict) && !verdict.isAllowed, "expected a denial");
  return verdict;
}

interface WindowCase {
  readonly key: keyof Limits;
  readonly limit: number;
  /** Token cost per request (1 for request budgets, which ignore it). */
  readonly cost: number;
  /** Expected reason fragment when over the budget. */
  readonly reason: RegExp;
  /** When the oldest charge made at T0 stops counting. */
  readonly freedAtMs: number;
}

const WINDOW_CASES: readonly WindowCase[] = [
  { key: "rps", limit: 3, cost: 1, reason: /over its rps budget \(3\/3\)/, freedAtMs: T0 + 1_000 },
  { key: "rpm", limit: 3, cost: 1, reason: /over its rpm budget \(3\/3\)/, freedAtMs: T0 + MINUTE_MS },
  { key: "rph", limit: 3, cost: 1, reason: /over its rph budget \(3\/3\)/, freedAtMs: T0 + HOUR_MS },
  { key: "rpd", limit: 3, cost: 1, reason: /over its rpd budget \(3\/3\)/, freedAtMs: Date.UTC(2026, 0, 2) },
  {
    key: "tpm",
    limit: 300,
    cost: 100,
    reason: /over its tpm budget \(300\/300 tokens, needs 100\)/,
    freedAtMs: T0 + MINUTE_MS,
  },
  {
    key: "tph",
    limit: 300,
    cost: 100,
    reason: /over its tph budget \(300\/300 tokens, needs 100\)/,
    freedAtMs: T0 + HOUR_MS,
  },
  {
    key: "tpd",
    limit: 300,
    cost: 100,
    reason: /over its tpd budget \(300\/300 tokens, needs 100\)/,
    freedAtMs: Date.UTC(2026, 0, 2),
  },
  {
    key: "tokensPerMonth",
    limit: 300,
    cost: 100,
    reason: /over its tokens_per_month budget \(300\/300 tokens, needs 100\)/,
    freedAtMs: Date.UTC(2026, 1, 1),
  },
];

describe("BudgetBook: every window allows up to its limit and denies beyond it until the exact instant", () => {
  for (const window of WINDOW_CASES) {
    it(window.key, () => {
      const book = new BudgetBook();
      const scope = scopeOf({ [window.key]: window.limit });
      // Three charges at T0, T0+1 and T0+2: exactly the limit.
      for (let index = 0; index < 3; index++) reserveOk(book, [scope], window.cost, T0 + index);

      const verdict = denied(book.reserve([scope], { tokens: window.cost }, T0 + 3));
      assert.match(verdict.reason, window.reason);
      assert.equal(verdict.scopeId, "deployment:p/m");
      assert.equal(verdict.retryAtMs, window.freedAtMs, new Date(verdict.retryAtMs).toISOString());

      // One millisecond before the retry instant it is still over budget, at the instant it fits.
      denied(book.check([scope], { tokens: window.cost }, window.freedAtMs - 1));
      assert.deepEqual(book.check([scope], { tokens: window.cost }, window.freedAtMs), { isAllowed: true });
      reserveOk(book, [scope], window.cost, window.freedAtMs);
    });
  }

  it("concurrency: a slot per reservation until it is released", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ concurrency: 2 });
    const first = reserveOk(book, [scope], 0, T0);
    reserveOk(book, [scope], 0, T0);
    const verdict = denied(book.reserve([scope], { tokens: 0 }, T0 + 5));
    assert.equal(verdict.reason, "at its concurrency limit (2 in flight)");
    assert.equal(verdict.retryAtMs, T0 + 5 + 100);
    assert.equal(book.inFlight(scope.id), 2);
    book.release(first);
    assert.equal(book.inFlight(scope.id), 1);
    reserveOk(book, [scope], 0, T0 + 6);
  });

  it("takeInFlight: a call beside a reservation's own takes a concurrency slot of every scope, all or none", () => {
    const book = new BudgetBook();
    const pool = scopeOf({ concurrency: 4 }, "provider:p");
    const own = scopeOf({ concurrency: 3, rpm: 10 });
    const reservation = reserveOk(book, [pool, own], 0, T0);
    const second = book.takeInFlight([pool, own], T0);
    const third = book.takeInFlight([pool, own], T0);
    assert.ok(second !== undefined && third !== undefined);
    // The deployment's 3 are held (the reservation and two calls): no fourth, and the pool is left as it was.
    assert.equal(book.takeInFlight([pool, own], T0), undefined);
    assert.equal(book.inFlight(pool.id), 3);
    assert.equal(book.inFlight(own.id), 3);
    denied(book.check([pool, own], { tokens: 0 }, T0));
    // Its requests are the reservation's: the rpm counts one.
    assert.equal(book.usage(own, T0).find((window) => window.unit === "requests")?.used, 1);
    second();
    second();
    assert.equal(book.inFlight(own.id), 2, "a release is idempotent");
    assert.ok(book.takeInFlight([pool, own], T0) !== undefined);
    third();
    book.release(reservation);
    assert.equal(book.inFlight(own.id), 1);
    // Without a concurrency, a call is counted in flight and never refused.
    const open = scopeOf({ rpm: 10 }, "deployment:p/open");
    const release = book.takeInFlight([open], T0);
    assert.equal(book.inFlight(open.id), 1);
    release?.();
    assert.equal(book.inFlight(open.id), 0);
  });

  it("a request larger than a whole token budget can never fit", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ tpm: 1_000 });
    const verdict = denied(book.reserve([scope], { tokens: 1_001 }, T0));
    assert.equal(verdict.retryAtMs, Number.POSITIVE_INFINITY);
    assert.match(verdict.reason, /needs 1001/);
  });
});

describe("BudgetBook: sliding windows", () => {
  it("a charge counts for exactly windowMs: in at +windowMs−1, out at +windowMs", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpm: 1 });
    reserveOk(book, [scope], 0, T0);
    denied(book.check([scope], { tokens: 0 }, T0 + MINUTE_MS - 1));
    reserveOk(book, [scope], 0, T0 + MINUTE_MS);
  });

  it("never lets twice the limit through around a minute boundary (unlike a fixed window)", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpm: 2 });
    const boundary = Date.UTC(2026, 0, 1, 12, 1);
    reserveOk(book, [scope], 0, boundary - 1);
    reserveOk(book, [scope], 0, boundary - 1);
    const verdict = denied(book.reserve([scope], { tokens: 0 }, boundary + 1));
    assert.equal(verdict.retryAtMs, boundary - 1 + MINUTE_MS);
  });

  it("a request sent later than it was reserved counts from its send (markSent), as the provider counts it", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rps: 2, rpm: 100 });
    // Two requests reserved at T0; the first waited 300 ms for a new connection (its TLS handshake).
    const slow = reserveOk(book, [scope], 0, T0);
    const fast = reserveOk(book, [scope], 0, T0);
    book.markSent(fast, T0);
    book.markSent(slow, T0 + 300);
    // A third may go once the fast one's second has passed, not before; then the slow one's second holds the
    // window until T0 + 1 300: the provider saw it at T0 + 300.
    const verdict = denied(book.check([scope], { tokens: 0 }, T0 + 999));
    assert.equal(verdict.retryAtMs, T0 + 1_000);
    reserveOk(book, [scope], 0, T0 + 1_000);
    assert.equal(denied(book.check([scope], { tokens: 0 }, T0 + 1_299)).retryAtMs, T0 + 1_300);
    reserveOk(book, [scope], 0, T0 + 1_300);
    // A send at or before the reservation moves nothing; the minute window moved too.
    book.markSent(fast, T0 - 5);
    const minute = book.usage(scope, T0 + 1_300).find((usage) => usage.window === "minute");
    assert.equal(minute?.used, 4);
    assert.equal(minute?.resetsAtMs, T0 + MINUTE_MS);
  });

  it("a request sent after its charge left the window is charged again from its send", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rps: 1 });
    const reservation = reserveOk(book, [scope], 0, T0);
    // The connection took 1.5 s: the charge left the 1 s window at T0 + 1 000, and a check then saw it gone.
    assert.deepEqual(book.check([scope], { tokens: 0 }, T0 + 1_200), { isAllowed: true });
    book.markSent(reservation, T0 + 1_500);
    assert.equal(denied(book.check([scope], { tokens: 0 }, T0 + 1_600)).retryAtMs, T0 + 2_500);
  });

  it("token retry time: the earliest instant at which enough old charges have left for this cost", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ tpm: 300 });
    reserveOk(book, [scope], 100, T0);
    reserveOk(book, [scope], 150, T0 + 10);
    // 250 used: 100 more fits once the first charge leaves, 200 more only once the second does too.
    assert.equal(denied(book.check([scope], { tokens: 100 }, T0 + 20)).retryAtMs, T0 + MINUTE_MS);
    assert.equal(denied(book.check([scope], { tokens: 200 }, T0 + 20)).retryAtMs, T0 + 10 + MINUTE_MS);
    assert.deepEqual(book.check([scope], { tokens: 50 }, T0 + 20), { isAllowed: true });
  });

  it("usage shows used, remaining and when the oldest charge leaves", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpm: 5, tpm: 1_000 });
    reserveOk(book, [scope], 120, T0);
    reserveOk(book, [scope], 80, T0 + 1_000);
    assert.deepEqual(book.usage(scope, T0 + 2_000), [
      {
        unit: "requests",
        window: "minute",
        limit: 5,
        used: 2,
        remaining: 3,
        resetsAtMs: T0 + MINUTE_MS,
        source: "config",
        algorithm: "sliding",
      },
      {
        unit: "tokens",
        window: "minute",
        limit: 1_000,
        used: 200,
        remaining: 800,
        resetsAtMs: T0 + MINUTE_MS,
        source: "config",
        algorithm: "sliding",
      },
    ]);
    assert.equal(book.usage(scope, T0 + MINUTE_MS + 1_000)[0]?.used, 0);
  });
});

describe("BudgetBook: checks, scopes, reconcile, release", () => {
  it("check has no side effects", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpd: 1, concurrency: 1 });
    for (let index = 0; index < 3; index++)
      assert.deepEqual(book.check([scope], { tokens: 0 }, T0), { isAllowed: true });
    assert.equal(book.usage(scope, T0)[0]?.used, 0);
    assert.equal(book.inFlight(scope.id), 0);
  });

  it("a provider pool and a deployment are charged all or nothing", () => {
    const book = new BudgetBook();
    const pool = scopeOf({ rpm: 10 }, "provider:p");
    const tight = scopeOf({ rpm: 1 }, "deployment:p/a");
    const other = scopeOf({}, "deployment:p/b");
    reserveOk(book, [pool, tight], 0, T0);
    const verdict = denied(book.reserve([pool, tight], { tokens: 0 }, T0 + 1));
    assert.equal(verdict.scopeId, "deployment:p/a");
    // The refused request did not spend the pool's budget.
    assert.equal(book.usage(pool, T0 + 1)[0]?.used, 1);
    reserveOk(book, [pool, other], 0, T0 + 2);
    assert.equal(book.usage(pool, T0 + 2)[0]?.used, 2);
  });

  it("the pool denies a deployment that has room of its own", () => {
    const book = new BudgetBook();
    const pool = scopeOf({ rpd: 1 }, "provider:p");
    reserveOk(book, [pool, scopeOf({}, "deployment:p/a")], 0, T0);
    const verdict = denied(book.reserve([pool, scopeOf({}, "deployment:p/b")], { tokens: 0 }, T0));
    assert.equal(verdict.scopeId, "provider:p");
    assert.equal(verdict.retryAtMs, Date.UTC(2026, 0, 2));
  });

  it("reconcile replaces the estimate with the real usage in every window", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ tpm: 1_000, tpd: 5_000, tokensPerMonth: 9_000 });
    const reservation = reserveOk(book, [scope], 900, T0);
    denied(book.check([scope], { tokens: 200 }, T0 + 1));
    book.reconcile(reservation, 150, T0 + 1);
    assert.deepEqual(
      book.usage(scope, T0 + 1).map((window) => window.used),
      [150, 150, 150],
    );
    assert.deepEqual(book.check([scope], { tokens: 850 }, T0 + 1), { isAllowed: true });
    // Upwards too: the provider counted more than we estimated.
    book.reconcile(reservation, 1_000, T0 + 2);
    assert.equal(denied(book.check([scope], { tokens: 1 }, T0 + 2)).retryAtMs, T0 + MINUTE_MS);
  });

  it("a reconcile after the day rolled over does not touch the new day's counter", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ tpd: 1_000 });
    const reservation = reserveOk(book, [scope], 400, Date.UTC(2026, 0, 1, 23, 59));
    const nextDay = Date.UTC(2026, 0, 2, 0, 1);
    reserveOk(book, [scope], 100, nextDay);
    book.reconcile(reservation, 900, nextDay);
    assert.equal(book.usage(scope, nextDay)[0]?.used, 100);
  });

  it("release is idempotent: a second release frees nobody else's slot", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ concurrency: 2 });
    const first = reserveOk(book, [scope], 0, T0);
    reserveOk(book, [scope], 0, T0);
    book.release(first);
    book.release(first);
    book.release(first);
    assert.equal(book.inFlight(scope.id), 1);
    assert.equal(first.isReleased, true);
    reserveOk(book, [scope], 0, T0);
    denied(book.check([scope], { tokens: 0 }, T0));
  });

  it("a request charged before its scope was forgotten (a reload to another key) frees nothing of the new count", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ tpd: 1_000, concurrency: 1 });
    const old = reserveOk(book, [scope], 400, T0);
    book.forget(scope.id);
    reserveOk(book, [scope], 100, T0 + 1);
    book.reconcile(old, 0, T0 + 2);
    book.release(old);
    assert.equal(book.inFlight(scope.id), 1, "the new key's request still holds its slot");
    assert.match(denied(book.check([scope], { tokens: 0 }, T0 + 3)).reason, /concurrency/);
    assert.equal(book.usage(scope, T0 + 3)[0]?.used, 100, "the old request's tokens were never the new key's");
  });

  it("release keeps the request counted: only the concurrency slot is given back", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpm: 1, concurrency: 1 });
    book.release(reserveOk(book, [scope], 0, T0));
    assert.match(denied(book.check([scope], { tokens: 0 }, T0 + 1)).reason, /rpm/);
  });
});

describe("BudgetBook: a refusal is the binding one (when every budget admits the request)", () => {
  /** rpm 2 and tpm 100: 10 tokens at T0, 80 at T0+30 s. At T0+50 s rpm frees at T0+60 s, 80 tokens only at +90 s. */
  function spentTwice(limits: Limits = { rpm: 2, tpm: 100 }): { book: BudgetBook; scope: BudgetScope } {
    const book = new BudgetBook();
    const scope = scopeOf(limits);
    reserveOk(book, [scope], 10, T0);
    reserveOk(book, [scope], 80, T0 + 30_000);
    return { book, scope };
  }

  it("rpm spent and a request larger than the whole tpm: never fits (Infinity), not rpm's wait", () => {
    const { book, scope } = spentTwice();
    const verdict = denied(book.check([scope], { tokens: 150 }, T0 + 50_000));
    assert.equal(verdict.retryAtMs, Number.POSITIVE_INFINITY);
    assert.ok(isNeverFit(verdict.retryAtMs));
    assert.equal(verdict.reason, "over its tpm budget (90/100 tokens, needs 150)");
    // reserve answers the same (and charges nothing).
    assert.equal(denied(book.reserve([scope], { tokens: 150 }, T0 + 50_000)).retryAtMs, Number.POSITIVE_INFINITY);
  });

  it("rpm opens in 10 s, tpm in 40 s: retry in 40 s, naming the tpm", () => {
    const { book, scope } = spentTwice();
    const verdict = denied(book.check([scope], { tokens: 40 }, T0 + 50_000));
    assert.equal(verdict.retryAtMs, T0 + 90_000);
    assert.equal(verdict.reason, "over its tpm budget (90/100 tokens, needs 40)");
    // A request that fits the tpm is told rpm's own time.
    assert.equal(denied(book.check([scope], { tokens: 5 }, T0 + 50_000)).retryAtMs, T0 + 60_000);
    // At rpm's time (the old answer) the tpm still refuses; at the answer's time the request fits.
    denied(book.check([scope], { tokens: 40 }, T0 + 60_000));
    assert.deepEqual(book.check([scope], { tokens: 40 }, T0 + 90_000), { isAllowed: true });
  });

  it("rpm spent and a day spent: the day's end, whichever rule comes first", () => {
    const { book, scope } = spentTwice({ rpm: 2, tpm: 100, tpd: 120 });
    const verdict = denied(book.check([scope], { tokens: 40 }, T0 + 50_000));
    assert.equal(verdict.retryAtMs, Date.UTC(2026, 0, 2));
    assert.equal(verdict.reason, "over its tpd budget (90/120 tokens, needs 40)");
  });

  it("two scopes (pool and model) with different waits: the later one, whichever scope it is", () => {
    const book = new BudgetBook();
    const pool = scopeOf({ rpm: 1 }, "provider:p");
    const own = scopeOf({ rph: 1 }, "deployment:p/a");
    reserveOk(book, [pool, own], 0, T0);
    const modelLater = denied(book.check([pool, own], { tokens: 0 }, T0 + 10_000));
    assert.deepEqual(modelLater, {
      isAllowed: false,
      scopeId: "deployment:p/a",
      reason: "over its rph budget (1/1)",
      retryAtMs: T0 + HOUR_MS,
    });

    const hourPool = scopeOf({ rph: 1 }, "provider:q");
    const minuteOwn = scopeOf({ rpm: 1 }, "deployment:q/a");
    reserveOk(book, [hourPool, minuteOwn], 0, T0);
    const poolLater = denied(book.check([hourPool, minuteOwn], { tokens: 0 }, T0 + 10_000));
    assert.equal(poolLater.scopeId, "provider:q");
    assert.equal(poolLater.retryAtMs, T0 + HOUR_MS);
    // A model the pool's other deployment does not block is told the pool's own wait.
    assert.equal(denied(book.check([hourPool], { tokens: 0 }, T0 + 10_000)).retryAtMs, T0 + HOUR_MS);
  });

  it("a never-fit in a later scope wins over a spent budget in an earlier one", () => {
    const book = new BudgetBook();
    const pool = scopeOf({ rpm: 1 }, "provider:p");
    const own = scopeOf({ tpm: 100 }, "deployment:p/a");
    reserveOk(book, [pool, own], 10, T0);
    const verdict = denied(book.check([pool, own], { tokens: 500 }, T0 + 1_000));
    assert.equal(verdict.scopeId, "deployment:p/a");
    assert.equal(verdict.retryAtMs, Number.POSITIVE_INFINITY);
  });

  it("a full concurrency slot with a spent budget: the budget's wait (or the never-fit), not 100 ms", () => {
    const { book, scope } = spentTwice({ rpm: 2, tpm: 100, concurrency: 2 });
    assert.equal(book.inFlight(scope.id), 2);
    const spent = denied(book.check([scope], { tokens: 40 }, T0 + 50_000));
    assert.equal(spent.retryAtMs, T0 + 90_000);
    assert.equal(denied(book.check([scope], { tokens: 150 }, T0 + 50_000)).retryAtMs, Number.POSITIVE_INFINITY);
    // Only the slot: its own short wait.
    const slotOnly = denied(book.check([scope], { tokens: 0 }, T0 + 90_000));
    assert.equal(slotOnly.reason, "at its concurrency limit (2 in flight)");
    assert.equal(slotOnly.retryAtMs, T0 + 90_000 + 100);
  });

  it("a window the provider reports is one of the budgets: its later reset wins over a rule's", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpm: 1 });
    reserveOk(book, [scope], 0, T0);
    book.learn(scope, [{ unit: "requests", window: "day", limit: 50, remaining: 0, resetAtMs: T0 + 5 * HOUR_MS }], T0);
    const verdict = denied(book.check([scope], { tokens: 0 }, T0 + 1_000));
    assert.equal(verdict.reason, "the provider reports 0 requests left this day");
    assert.equal(verdict.retryAtMs, T0 + 5 * HOUR_MS);
    // And a rule's later wait wins over a report that resets sooner.
    const other = scopeOf({ rph: 1 }, "deployment:p/other");
    reserveOk(book, [other], 0, T0);
    book.learn(other, [{ unit: "requests", window: "minute", remaining: 0, resetAtMs: T0 + 30_000 }], T0);
    assert.equal(denied(book.check([other], { tokens: 0 }, T0 + 1_000)).retryAtMs, T0 + HOUR_MS);
  });
});

describe("BudgetBook: learned limits", () => {
  it("the provider's remaining wins over a looser config budget, until its reset", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpm: 100 });
    reserveOk(book, [scope], 0, T0);
    book.learn(scope, [{ unit: "requests", window: "minute", limit: 30, remaining: 2, resetAtMs: T0 + 20_000 }], T0);
    reserveOk(book, [scope], 0, T0 + 1);
    reserveOk(book, [scope], 0, T0 + 2);
    const verdict = denied(book.reserve([scope], { tokens: 0 }, T0 + 3));
    assert.equal(verdict.reason, "the provider reports 0 requests left this minute");
    assert.equal(verdict.retryAtMs, T0 + 20_000);
    assert.deepEqual(
      book.usage(scope, T0 + 3).find((window) => window.source === "provider"),
      {
        unit: "requests",
        window: "minute",
        limit: 30,
        used: 30,
        remaining: 0,
        resetsAtMs: T0 + 20_000,
        source: "provider",
        algorithm: "fixed",
      },
    );

    denied(book.check([scope], { tokens: 0 }, T0 + 19_999));
    // At the reset the learned window expires: only the config budget (4 of 100 used) applies.
    reserveOk(book, [scope], 0, T0 + 20_000);
    assert.equal(
      book.usage(scope, T0 + 20_000).some((window) => window.source === "provider"),
      false,
    );
  });

  it("learned tokens: a request that needs more than is left waits for the reset", () => {
    const book = new BudgetBook();
    const scope = scopeOf({});
    book.learn(scope, [{ unit: "tokens", window: "minute", remaining: 500, resetAtMs: T0 + 7_000 }], T0);
    reserveOk(book, [scope], 300, T0);
    const verdict = denied(book.check([scope], { tokens: 300 }, T0));
    assert.equal(verdict.reason, "the provider reports 200 tokens left this minute");
    assert.equal(verdict.retryAtMs, T0 + 7_000);
    assert.deepEqual(book.check([scope], { tokens: 200 }, T0), { isAllowed: true });
  });

  it("a fresh report replaces the old one (remaining is the provider's count, not ours)", () => {
    const book = new BudgetBook();
    const scope = scopeOf({});
    book.learn(scope, [{ unit: "requests", window: "day", remaining: 1, resetAtMs: T0 + HOUR_MS }], T0);
    reserveOk(book, [scope], 0, T0);
    denied(book.check([scope], { tokens: 0 }, T0 + 1));
    book.learn(scope, [{ unit: "requests", window: "day", remaining: 5, resetAtMs: T0 + HOUR_MS }], T0 + 2);
    assert.deepEqual(book.check([scope], { tokens: 0 }, T0 + 2), { isAllowed: true });
  });

  it("a report taken as of an earlier request keeps counting the requests sent after that one", () => {
    const book = new BudgetBook();
    const scope = scopeOf({});
    const zeroth = reserveOk(book, [scope], 0, T0 - 10);
    // Three overlapping requests; the first one's answer arrives after the other two were sent: "2 left" as of it.
    const first = reserveOk(book, [scope], 0, T0);
    reserveOk(book, [scope], 0, T0 + 60);
    reserveOk(book, [scope], 0, T0 + 120);
    const report = { unit: "requests", window: "minute", limit: 6, remaining: 2, resetAtMs: T0 + 50_000 } as const;
    book.learn(scope, [{ ...report, asOf: first }], T0 + 300);
    // The two sent after the first took what was left: the provider would refuse a fourth.
    const verdict = denied(book.check([scope], { tokens: 0 }, T0 + 300));
    assert.equal(verdict.reason, "the provider reports 0 requests left this minute");
    // A report older than the one in force (an earlier request's answer arriving late) does not replace it.
    book.learn(scope, [{ ...report, remaining: 10, asOf: zeroth }], T0 + 302);
    denied(book.check([scope], { tokens: 0 }, T0 + 302));
  });

  it("a token report counts an answer sent after it at its real size once it is reconciled, not its estimate", () => {
    const book = new BudgetBook();
    const scope = scopeOf({});
    const first = reserveOk(book, [scope], 1_000, T0);
    const report = { unit: "tokens", window: "minute", remaining: 5_000, resetAtMs: T0 + 50_000 } as const;
    book.learn(scope, [{ ...report, asOf: first }], T0 + 100);
    // Sent after the report: its estimate (a prompt plus an unused max_tokens) counts as spent until its answer.
    const second = reserveOk(book, [scope], 3_000, T0 + 200);
    assert.equal(
      denied(book.check([scope], { tokens: 2_500 }, T0 + 201)).reason,
      "the provider reports 2000 tokens left this minute",
    );
    book.reconcile(second, 400, T0 + 300);
    assert.deepEqual(book.check([scope], { tokens: 4_600 }, T0 + 301), { isAllowed: true });
    denied(book.check([scope], { tokens: 4_601 }, T0 + 301));
    // A late report as of the first request places the second among the charges after it at its real size.
    book.learn(scope, [{ ...report, remaining: 4_000, asOf: first }], T0 + 400);
    assert.deepEqual(book.check([scope], { tokens: 3_600 }, T0 + 401), { isAllowed: true });
    denied(book.check([scope], { tokens: 3_601 }, T0 + 401));
    // A report taken after the second request already counts it: reconciling again does not take it off twice.
    book.learn(scope, [{ ...report, remaining: 1_000, asOf: second }], T0 + 500);
    book.reconcile(second, 100, T0 + 600);
    assert.deepEqual(book.check([scope], { tokens: 1_000 }, T0 + 601), { isAllowed: true });
    denied(book.check([scope], { tokens: 1_001 }, T0 + 601));
  });

  it("a report anchored to a request this book does not hold is placed by its send time", () => {
    const book = new BudgetBook();
    const scope = scopeOf({});
    reserveOk(book, [scope], 0, T0);
    reserveOk(book, [scope], 0, T0 + 60);
    // A shared ledger's own reservation for the first request (the book holds its mirror, another object).
    const foreign: Reservation = { id: 999, scopes: [scope], atMs: T0, tokens: 0, isReleased: false };
    book.learn(
      scope,
      [{ unit: "requests", window: "minute", remaining: 2, resetAtMs: T0 + 50_000, asOf: foreign }],
      T0 + 300,
    );
    reserveOk(book, [scope], 0, T0 + 301);
    denied(book.check([scope], { tokens: 0 }, T0 + 302));
  });

  it("a window that already reset, or one without a remaining count, teaches nothing", () => {
    const book = new BudgetBook();
    const scope = scopeOf({});
    book.learn(
      scope,
      [
        { unit: "requests", window: "minute", remaining: 0, resetAtMs: T0 },
        { unit: "tokens", window: "minute", limit: 100, resetAtMs: T0 + 1_000 },
      ],
      T0,
    );
    assert.deepEqual(book.check([scope], { tokens: 0 }, T0), { isAllowed: true });
    assert.deepEqual(book.usage(scope, T0), []);
  });

  it("without a reset time (Mistral, Together tokens) the window is assumed to end at its longest", () => {
    const book = new BudgetBook();
    const scope = scopeOf({});
    book.learn(
      scope,
      [
        { unit: "requests", window: "minute", limit: 2, remaining: 0 },
        { unit: "tokens", window: "second", limit: 1_000, remaining: 0 },
        { unit: "tokens", window: "month", limit: 4_000_000, remaining: 0 },
      ],
      T0,
    );
    const usage = book.usage(scope, T0);
    assert.deepEqual(
      usage.map((window) => [window.unit, window.window, window.resetsAtMs]),
      [
        ["requests", "minute", T0 + MINUTE_MS],
        ["tokens", "second", T0 + 1_000],
        ["tokens", "month", Date.UTC(2026, 1, 1)],
      ],
    );
    // Every reported window is spent: the request fits when the last of them resets (the month), not the first.
    const verdict = denied(book.check([scope], { tokens: 1 }, T0));
    assert.equal(verdict.retryAtMs, Date.UTC(2026, 1, 1));
    assert.equal(verdict.reason, "the provider reports 0 tokens left this month");
  });
});

describe("BudgetBook: daily reset", () => {
  it("at 00:00 UTC", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpd: 2, tpd: 1_000 });
    const lateEvening = Date.UTC(2026, 0, 1, 23, 30);
    reserveOk(book, [scope], 10, lateEvening);
    reserveOk(book, [scope], 10, lateEvening + 1);
    const verdict = denied(book.check([scope], { tokens: 10 }, Date.UTC(2026, 0, 2) - 1));
    assert.equal(verdict.retryAtMs, Date.UTC(2026, 0, 2));
    reserveOk(book, [scope], 10, Date.UTC(2026, 0, 2));
    const usage = book.usage(scope, Date.UTC(2026, 0, 2));
    assert.deepEqual(
      usage.map((window) => [window.used, window.resetsAtMs]),
      [
        [1, Date.UTC(2026, 0, 3)],
        [10, Date.UTC(2026, 0, 3)],
      ],
    );
  });

  it('at "00:00 America/Los_Angeles": 08:00 UTC in winter', () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpd: 1 }, "deployment:gemini/flash", parseDayReset("00:00 America/Los_Angeles"));
    // 2026-01-15 07:00 UTC is 23:00 on the 14th in Los Angeles.
    reserveOk(book, [scope], 0, Date.UTC(2026, 0, 15, 7));
    assert.equal(
      denied(book.check([scope], { tokens: 0 }, Date.UTC(2026, 0, 15, 7, 59))).retryAtMs,
      Date.UTC(2026, 0, 15, 8),
    );
    reserveOk(book, [scope], 0, Date.UTC(2026, 0, 15, 8));
  });

  it('at "00:00 America/Los_Angeles" across the spring-forward day (23 hours long)', () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpd: 1 }, "deployment:gemini/flash", parseDayReset("00:00 America/Los_Angeles"));
    // 2026-03-08 09:00 UTC is 01:00 PST, one hour before clocks spring forward.
    reserveOk(book, [scope], 0, Date.UTC(2026, 2, 8, 9));
    const nextMidnight = Date.UTC(2026, 2, 9, 7); // 00:00 PDT
    assert.equal(denied(book.check([scope], { tokens: 0 }, Date.UTC(2026, 2, 9, 6, 59))).retryAtMs, nextMidnight);
    denied(book.check([scope], { tokens: 0 }, nextMidnight - 1));
    reserveOk(book, [scope], 0, nextMidnight);
    assert.equal(book.usage(scope, nextMidnight)[0]?.resetsAtMs, Date.UTC(2026, 2, 10, 7));
  });

  it("a month budget resets on the 1st", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ tokensPerMonth: 1_000 });
    reserveOk(book, [scope], 1_000, Date.UTC(2026, 0, 31, 23));
    assert.equal(
      denied(book.check([scope], { tokens: 1 }, Date.UTC(2026, 0, 31, 23, 59))).retryAtMs,
      Date.UTC(2026, 1, 1),
    );
    reserveOk(book, [scope], 1_000, Date.UTC(2026, 1, 1));
  });
});

describe("BudgetBook: persistence hooks", () => {
  it("export then import into a fresh book keeps every counter and learned window, with nothing in flight", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpm: 10, rpd: 3, tpm: 1_000, tpd: 2_000, tokensPerMonth: 5_000, concurrency: 4 });
    reserveOk(book, [scope], 100, T0);
    reserveOk(book, [scope], 250, T0 + 1_000);
    book.learn(scope, [{ unit: "requests", window: "day", limit: 50, remaining: 7, resetAtMs: T0 + HOUR_MS }], T0);
    const exported = book.exportScope(scope.id);
    assert.ok(exported !== undefined);
    const copy = new BudgetBook();
    copy.importScope(scope.id, JSON.parse(JSON.stringify(exported)));
    assert.deepEqual(copy.usage(scope, T0 + 2_000), book.usage(scope, T0 + 2_000));
    assert.equal(copy.inFlight(scope.id), 0);
    assert.equal(book.inFlight(scope.id), 2);
    // The imported sliding log still expires on time.
    reserveOk(copy, [scope], 100, T0 + 2_000);
    assert.equal(denied(copy.check([scope], { tokens: 0 }, T0 + 2_001)).retryAtMs, Date.UTC(2026, 0, 2));
    assert.equal(copy.usage(scope, T0 + MINUTE_MS + 1_000)[0]?.used, 1);
  });

  it("exportScope is undefined for a scope never used; takeDirty lists changed scopes once", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpm: 1 });
    assert.equal(book.exportScope(scope.id), undefined);
    reserveOk(book, [scope], 0, T0);
    assert.deepEqual(book.takeDirty(), [scope.id]);
    assert.deepEqual(book.takeDirty(), []);
    book.reset();
    assert.deepEqual(book.takeDirty(), [scope.id]);
    assert.equal(book.exportScope(scope.id), undefined);
    reserveOk(book, [scope], 0, T0);
  });
});

describe("BudgetBook: the cost of a check does not grow with the limit or the traffic", () => {
  /** Reserves `requests` charges 1 ms apart (all inside one minute), reconciling each; returns what it cost. */
  function run(limits: Limits, requests: number): { runs: number; workPerRequest: number; allowed: number } {
    const book = new BudgetBook();
    const pool = scopeOf(limits, "provider:p");
    const own = scopeOf(limits, "deployment:p/m");
    let allowed = 0;
    for (let index = 0; index < requests; index++) {
      const result = book.reserve([pool, own], { tokens: 100 }, T0 + index);
      if (!isReservation(result)) continue;
      allowed++;
      book.reconcile(result, 90, T0 + index);
      book.release(result);
    }
    const footprint = book.footprint(own.id);
    return { runs: footprint.runs, workPerRequest: footprint.work / requests, allowed };
  }

  it("runs held and work done per request stay the same from a limit of 50 000 rpm to 100 000 000", () => {
    const small = run({ rps: 10_000, rpm: 50_000, tpm: 5_000_000, rph: 1_000_000 }, 50_000);
    const huge = run({ rps: 1e8, rpm: 1e8, tpm: 1e9, rph: 1e8 }, 50_000);
    assert.equal(huge.allowed, 50_000);
    assert.equal(small.allowed, 50_000);
    // Three windows (second, minute, hour), each at most 2 × 64 + 1 runs, for 50 000 requests in them.
    for (const result of [small, huge]) {
      assert.ok(result.runs <= 3 * 129, `runs ${result.runs}`);
      assert.ok(result.workPerRequest <= 8, `work per request ${result.workPerRequest}`);
    }
    assert.equal(huge.runs, small.runs);
    assert.equal(huge.workPerRequest, small.workPerRequest);
  });

  it("at the limit, denials cost O(runs), not O(requests in the window)", () => {
    const denied = run({ rpm: 20_000, tpm: 1e9 }, 60_000);
    assert.equal(denied.allowed, 20_000);
    // 40 000 denials each scanned at most one window's runs.
    assert.ok(denied.workPerRequest <= 130, `work per request ${denied.workPerRequest}`);
    assert.ok(denied.runs <= 129, `runs ${denied.runs}`);
  });

  it("a busy window counts merged charges conservatively: never more than the limit in any window", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpm: 1_000 });
    const admitted: number[] = [];
    // 3 requests per ms offered for 3 minutes: far more than the limit.
    for (let ms = 0; ms < 3 * MINUTE_MS; ms += 7) {
      for (let index = 0; index < 3; index++) {
        if (isReservation(book.reserve([scope], { tokens: 0 }, T0 + ms))) admitted.push(T0 + ms);
      }
    }
    // Sliding check over every admitted charge: the minute starting there never holds more than 1 000.
    let start = 0;
    for (let end = 0; end < admitted.length; end++) {
      while ((admitted[start] as number) <= (admitted[end] as number) - MINUTE_MS) start++;
      assert.ok(end - start + 1 <= 1_000, `window ending at ${admitted[end]} holds ${end - start + 1}`);
    }
    // And it is not much stricter than an exact log: within a 1/64 of a window of waiting per minute.
    assert.ok(admitted.length >= 3 * 1_000 * (1 - 2 / 64), `admitted ${admitted.length}`);
    assert.ok(book.footprint(scope.id).runs <= 129);
  });
});

describe("BudgetBook: persisted format", () => {
  it("reads the version-1 format (one log entry per request) into every sliding window", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rps: 5, rpm: 10, tpm: 1_000, rph: 100 });
    book.importScope(scope.id, {
      log: [
        [T0 - HOUR_MS, 500],
        [T0 - 30_000, 300],
        [T0 - 500, 200],
      ],
      day: { windowStartMs: Date.UTC(2026, 0, 1), windowEndMs: Date.UTC(2026, 0, 2), requests: 3, tokens: 1_000 },
      month: { windowStartMs: Date.UTC(2026, 0, 1), windowEndMs: Date.UTC(2026, 1, 1), requests: 3, tokens: 1_000 },
      learned: [],
    });
    assert.deepEqual(
      book.usage(scope, T0).map((window) => [window.window, window.unit, window.used, window.resetsAtMs]),
      [
        ["second", "requests", 1, T0 + 500],
        ["minute", "requests", 2, T0 + 30_000],
        ["hour", "requests", 2, T0 + HOUR_MS - 30_000],
        ["minute", "tokens", 500, T0 + 30_000],
      ],
    );
    assert.equal(denied(book.check([scope], { tokens: 501 }, T0)).retryAtMs, T0 + 30_000);
    // Written back in the new format.
    reserveOk(book, [scope], 0, T0);
    assert.equal(book.exportScope(scope.id)?.version, 2);
  });
});

describe("pruning scopes no longer configured", () => {
  it("drops an unconfigured scope only once nothing in it counts and nothing is in flight; keeps configured ones", () => {
    const book = new BudgetBook();
    const removed = scopeOf({ rpm: 5 }, "deployment:gone/m");
    const kept = scopeOf({ rpm: 5 }, "deployment:here/m");
    for (const scope of [removed, kept]) {
      const reservation = reserveOk(book, [scope], 10, T0);
      book.reconcile(reservation, 10, T0);
      book.release(reservation);
    }
    const configured = new Set([kept.id]);
    // The minute, the day and the month still count.
    assert.deepEqual(book.pruneUnconfigured(configured, T0 + 2 * MINUTE_MS), []);
    const inFlight = reserveOk(book, [removed], 10, T0 + 2 * MINUTE_MS);
    const later = T0 + 62 * 24 * HOUR_MS;
    assert.deepEqual(book.pruneUnconfigured(configured, later), [], "a request in flight keeps its scope");
    book.release(inFlight);
    book.takeDirty();
    assert.deepEqual(book.pruneUnconfigured(configured, later), [removed.id]);
    assert.equal(book.exportScope(removed.id), undefined);
    assert.deepEqual(book.takeDirty(), [removed.id], "its row is deleted at the next flush");
    assert.notEqual(book.exportScope(kept.id), undefined);
  });
});

describe("a reservation of several upstream calls (BudgetCost.requests)", () => {
  // A Llama Guard moderation of N inputs is N chat calls: each window counts all of them, whatever its algorithm.
  for (const window of ["sliding", "fixed", "bucket"] as const) {
    it(`counts every call in an rpm ${window} window, and refuses a reservation that would go past it`, () => {
      const book = new BudgetBook();
      const scope = scopeOf({ rpm: 5, rpd: 100, window });
      const first = book.reserve([scope], { tokens: 10, requests: 3 }, T0);
      assert.ok(isReservation(first));
      const usage = book.usage(scope, T0);
      assert.deepEqual(
        usage.map((entry) => [entry.window, entry.used]),
        [
          ["minute", 3],
          ["day", 3],
        ],
      );
      const over = denied(book.reserve([scope], { tokens: 10, requests: 3 }, T0 + 1_000));
      assert.match(over.reason, /over its rpm budget \(3\/5, needs 3\)/);
      assert.ok(!isNeverFit(over.retryAtMs));
      // Two more fit exactly; six never do.
      assert.ok(isReservation(book.reserve([scope], { tokens: 10, requests: 2 }, T0 + 1_000)));
      const never = denied(book.check([scope], { tokens: 10, requests: 6 }, T0 + 2 * MINUTE_MS));
      assert.ok(isNeverFit(never.retryAtMs));
      // A whole minute later (a bucket refills by then), three fit again.
      assert.ok(isReservation(book.reserve([scope], { tokens: 10, requests: 3 }, T0 + 2 * MINUTE_MS)));
    });
  }

  // A moderation that failed at its second input sent 2 of 5 calls: the other 3 come back in every kind of window.
  for (const window of ["sliding", "fixed", "bucket"] as const) {
    it(`calls never sent come back out of an rpm ${window} window and the day's count (releaseUnsentCalls)`, () => {
      const book = new BudgetBook();
      const scope = scopeOf({ rpm: 5, rpd: 100, window });
      const five = book.reserve([scope], { tokens: 10, requests: 5 }, T0);
      assert.ok(isReservation(five));
      assert.match(denied(book.check([scope], { tokens: 0 }, T0 + 1_000)).reason, /rpm budget \(5\/5/);
      book.releaseUnsentCalls(five, 3, T0 + 1_000);
      assert.equal(five.requests, 2);
      assert.deepEqual(
        book.usage(scope, T0 + 1_000).map((entry) => [entry.window, entry.used]),
        [
          ["minute", 2],
          ["day", 2],
        ],
      );
      assert.ok(isReservation(book.reserve([scope], { tokens: 10, requests: 3 }, T0 + 1_000)));
      // Never more than it charged, whatever it is told.
      book.releaseUnsentCalls(five, 10, T0 + 1_000);
      assert.equal(five.requests, 0);
      assert.equal(book.usage(scope, T0 + 1_000)[1]?.used, 3);
    });
  }

  it("a reservation sent later (markSent) still counts all its calls", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpm: 5 });
    reserveOk(book, [scope], 0, T0);
    const several = book.reserve([scope], { tokens: 0, requests: 4 }, T0);
    assert.ok(isReservation(several));
    book.markSent(several, T0 + 30_000);
    assert.equal(book.usage(scope, T0 + 61_000)[0]?.used, 4, "the first left the window; the four sent later stay");
  });
});
