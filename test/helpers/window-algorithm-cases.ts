// One table of window-algorithm cases, run against every budget ledger: the in-process BudgetBook
// (src/limits/window-algorithms.test.ts) and the Redis ledger against a real redis-server
// (src/state/redis-window-algorithms.test.ts). A bucket's refill is used as it comes, a fixed window reopens at its
// boundary (not a millisecond before), a sliding one does neither. Every step goes through `reserve`, the
// authoritative call in both (a denial charges nothing; an admission charges, and the cases count it).
import assert from "node:assert/strict";
import { UTC_MIDNIGHT } from "../../src/config/day-reset.ts";
import type { Limits } from "../../src/config/types.ts";
import {
  type BudgetLedger,
  type BudgetScope,
  type Denied,
  isReservation,
  type Reservation,
  rulesFromLimits,
} from "../../src/limits/budgets.ts";

/** 2026-01-01T12:00:00Z */
export const T0 = Date.UTC(2026, 0, 1, 12);
const MINUTE_MS = 60_000;

export type Step =
  /** `count` reservations at `atMs` (each of `tokens`), all admitted; their indexes are kept for reconciles. */
  | { readonly admit: number; readonly atMs: number; readonly tokens?: number }
  /** One reservation at `atMs`, refused, with this retry time and (optionally) by this scope. */
  | {
      readonly deny: number;
      readonly tokens?: number;
      readonly retryAtMs?: number;
      readonly scopeId?: string;
      readonly why: string;
    }
  /** The real token count of the `index`-th admitted reservation. */
  | { readonly reconcile: number; readonly tokens: number; readonly atMs: number };

export interface WindowCase {
  readonly name: string;
  /** The scopes every step is charged to, in order (a provider pool first, as the router passes them). */
  readonly scopes: readonly BudgetScope[];
  readonly steps: readonly Step[];
}

function scopeOf(limits: Limits, id = "deployment:p/m"): BudgetScope {
  return { id, ...rulesFromLimits(limits), dayReset: UTC_MIDNIGHT };
}

export const WINDOW_CASES: readonly WindowCase[] = [
  {
    name: "sliding (the default): room comes back only as each request leaves its own window",
    scopes: [scopeOf({ rpm: 10 })],
    steps: [
      { admit: 10, atMs: T0 + 50_000 },
      { deny: T0 + MINUTE_MS, retryAtMs: T0 + 50_000 + MINUTE_MS, why: "no reopening at the minute" },
      { deny: T0 + 50_000 + MINUTE_MS - 1, why: "not before the first request's minute has passed" },
      { admit: 10, atMs: T0 + 50_000 + MINUTE_MS },
    ],
  },
  {
    name: "fixed: the whole limit reopens at the clock's minute boundary, and not a millisecond before",
    scopes: [scopeOf({ rpm: 10, window: "fixed" })],
    steps: [
      { admit: 10, atMs: T0 + 50_000 },
      { deny: T0 + 55_000, retryAtMs: T0 + MINUTE_MS, why: "full until the boundary" },
      { deny: T0 + MINUTE_MS - 1, why: "a millisecond before" },
      { admit: 10, atMs: T0 + MINUTE_MS },
      { deny: T0 + MINUTE_MS + 1, retryAtMs: T0 + 2 * MINUTE_MS, why: "the new window is full again" },
    ],
  },
  {
    name: "fixed with an offset: windows start that many ms after the boundary",
    scopes: [scopeOf({ rpm: 2, window: "fixed", windowOffsetMs: 30_000 })],
    steps: [
      { admit: 2, atMs: T0 + 10_000 },
      { deny: T0 + 10_000, retryAtMs: T0 + 30_000, why: "the window ends at the offset" },
      { deny: T0 + 29_999, why: "a millisecond before" },
      { admit: 2, atMs: T0 + 30_000 },
      { deny: T0 + 30_001, retryAtMs: T0 + 90_000, why: "full again" },
    ],
  },
  {
    name: "bucket: refilled continuously, each refilled request is usable as soon as it is back",
    scopes: [scopeOf({ rpm: 60, window: "bucket" })],
    steps: [
      { admit: 60, atMs: T0 },
      { deny: T0 + 500, retryAtMs: T0 + 1_000, why: "one request refills per second" },
      { deny: T0 + 999, why: "not before" },
      { admit: 1, atMs: T0 + 1_000 },
      { deny: T0 + 1_000, why: "the refilled one was used; nothing more" },
      { admit: 10, atMs: T0 + 11_000 },
      { deny: T0 + 11_000, retryAtMs: T0 + 12_000, why: "ten seconds gave back ten, no more" },
    ],
  },
  {
    name: "bucket: an idle bucket holds at most its limit (no credit beyond a full bucket)",
    scopes: [scopeOf({ rpm: 5, window: "bucket" })],
    steps: [
      { admit: 5, atMs: T0 + 10 * MINUTE_MS },
      { deny: T0 + 10 * MINUTE_MS, retryAtMs: T0 + 10 * MINUTE_MS + 12_000, why: "a full bucket, not more" },
    ],
  },
  {
    name: "token bucket: reconcile moves the debt, so tokens the answer did not use are back at once",
    scopes: [scopeOf({ tpm: 6_000, window: "bucket" })],
    steps: [
      { admit: 1, atMs: T0, tokens: 5_000 },
      { deny: T0, tokens: 2_000, why: "5000 of 6000 owed" },
      { reconcile: 0, tokens: 1_000, atMs: T0 + 10 },
      // 0.1 token refills per ms: 999 owed at T0 + 10 ms; 5000 more fit now only because 4000 came back.
      { admit: 1, atMs: T0 + 10, tokens: 5_000 },
      // 5999 owed: 1000 more fit once 999 have refilled, 9.99 s later.
      { deny: T0 + 10, tokens: 1_000, retryAtMs: T0 + 10 + 9_990, why: "the exact wait for the refill" },
    ],
  },
  {
    name: "fixed token window: a reconcile in the same window gives the unused tokens back",
    scopes: [scopeOf({ tpm: 100, window: "fixed" })],
    steps: [
      { admit: 1, atMs: T0 + 1_000, tokens: 80 },
      { deny: T0 + 2_000, tokens: 30, retryAtMs: T0 + MINUTE_MS, why: "80 + 30 > 100 until the minute ends" },
      { reconcile: 0, tokens: 10, atMs: T0 + 3_000 },
      { admit: 1, atMs: T0 + 3_000, tokens: 30 },
      { admit: 1, atMs: T0 + 3_000, tokens: 60 },
      { deny: T0 + 3_000, tokens: 1, why: "10 + 30 + 60 = 100" },
    ],
  },
  {
    name: "a fixed-window pool and a bucket deployment together: each scope counts its own way",
    scopes: [
      scopeOf({ rpm: 3, window: "fixed" }, "provider:p"),
      scopeOf({ rpm: 2, window: "bucket" }, "deployment:p/a"),
    ],
    steps: [
      { admit: 2, atMs: T0 + 1_000 },
      { deny: T0 + 1_000, retryAtMs: T0 + 31_000, scopeId: "deployment:p/a", why: "the bucket refills one per 30 s" },
      { admit: 1, atMs: T0 + 31_000 },
      // Both refuse: the pool until its minute ends (+60 s), the bucket until a request's room has refilled (its
      // debt of 1.5 down to 1, +61 s). The request needs both, so the later binds (a retry at +60 s met the bucket).
      {
        deny: T0 + 46_000,
        retryAtMs: T0 + 61_000,
        scopeId: "deployment:p/a",
        why: "the pool's minute is used up, and the bucket refills later still",
      },
      { admit: 1, atMs: T0 + 61_000 },
    ],
  },
];

/** Runs one case against a ledger; `label` names the ledger in failures. */
export async function runWindowCase(ledger: BudgetLedger, windowCase: WindowCase, label: string): Promise<void> {
  const admitted: Reservation[] = [];
  for (const [index, step] of windowCase.steps.entries()) {
    const where = `${label}, step ${index + 1}`;
    if ("admit" in step) {
      for (let count = 0; count < step.admit; count++) {
        const result = await ledger.reserve(windowCase.scopes, { tokens: step.tokens ?? 0 }, step.atMs);
        assert.ok(isReservation(result), `${where}: request ${count + 1} refused: ${JSON.stringify(result)}`);
        admitted.push(result);
      }
    } else if ("deny" in step) {
      const result = await ledger.reserve(windowCase.scopes, { tokens: step.tokens ?? 0 }, step.deny);
      assert.ok(!isReservation(result), `${where}: admitted, expected a refusal (${step.why})`);
      const denied = result as Denied;
      if (step.retryAtMs !== undefined) {
        assert.equal(
          denied.retryAtMs,
          step.retryAtMs,
          `${where}: retry at +${denied.retryAtMs - T0} ms, expected +${step.retryAtMs - T0} ms (${step.why})`,
        );
      }
      if (step.scopeId !== undefined) assert.equal(denied.scopeId, step.scopeId, `${where}: ${step.why}`);
    } else {
      const reservation = admitted[step.reconcile];
      assert.ok(reservation !== undefined, `${where}: no admitted reservation ${step.reconcile}`);
      ledger.reconcile(reservation, step.tokens, step.atMs);
    }
  }
}
