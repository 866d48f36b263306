// A charge of tokens alone (BudgetCost.isTokensOnly: a named client's chunk of an embeddings batch, whose request and
// slot were charged once for the batch) in both ledgers: the embedded BudgetBook and the Redis ledger against a real
// redis-server, with the same verdicts. It counts its tokens in every token window, no request, and neither checks
// nor holds a concurrency slot. Before, BudgetBook refused it at a full slot and freed another request's slot at its
// release, and Redis counted it one request (the script's `requests` was at least 1): a client's rpm of 1 refused
// the second chunk of a batch it had been admitted for.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Redis } from "ioredis";
import { isRedisInstalled, REDIS_MISSING, useRedisServer } from "../../test/helpers/redis-server.ts";
import { useRedisState } from "../../test/helpers/redis-state.ts";
import { ManualClock } from "../clock.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import {
  BudgetBook,
  type BudgetLedger,
  type BudgetScope,
  type BudgetVerdict,
  isReservation,
  type Reservation,
  rulesFromLimits,
} from "../limits/budgets.ts";
import { budgetKeyBase } from "./redis-keys.ts";

const START_MS = Date.UTC(2026, 0, 1, 12);
const CLIENT: BudgetScope = {
  id: "client:ci",
  ...rulesFromLimits({ rpm: 1, tpm: 100, concurrency: 1 }),
  dayReset: UTC_MIDNIGHT,
};
const TOKENS_ONLY = { isTokensOnly: true } as const;

function verdictOf(value: Reservation | BudgetVerdict): unknown {
  if (isReservation(value)) return { tokens: value.tokens, requests: value.requests ?? 1 };
  return value.isAllowed ? "allowed" : { reason: value.reason, retryAtMs: value.retryAtMs };
}

/** The same history through `ledger`: the verdicts, in order. */
async function history(ledger: BudgetLedger): Promise<unknown[]> {
  const verdicts: unknown[] = [];
  const request = await ledger.reserve([CLIENT], { tokens: 0 }, START_MS);
  verdicts.push(verdictOf(request));
  // Its slot held and its rpm spent, the client's chunk of 60 tokens is charged.
  const chunk = await ledger.reserve([CLIENT], { tokens: 60, ...TOKENS_ONLY }, START_MS + 1_000);
  verdicts.push(verdictOf(chunk));
  // The next one waits for the tpm: 60 of 100 used, the chunk's tokens leave the minute at START_MS + 61 s.
  verdicts.push(verdictOf(await ledger.reserve([CLIENT], { tokens: 60, ...TOKENS_ONLY }, START_MS + 2_000)));
  // One larger than the whole tpm never fits.
  verdicts.push(verdictOf(await ledger.reserve([CLIENT], { tokens: 150, ...TOKENS_ONLY }, START_MS + 2_000)));
  // Released, the chunk frees no slot: the request still holds the only one.
  if (isReservation(chunk)) ledger.release(chunk);
  verdicts.push(ledger.inFlight(CLIENT.id));
  const second = await ledger.reserve([CLIENT], { tokens: 0 }, START_MS + 3_000);
  verdicts.push(verdictOf(second));
  verdicts.push(verdictOf(await ledger.reserve([CLIENT], { tokens: 40, ...TOKENS_ONLY }, START_MS + 61_001)));
  return verdicts;
}

const EXPECTED = [
  { tokens: 0, requests: 1 },
  { tokens: 60, requests: 0 },
  { reason: "over its tpm budget (60/100 tokens, needs 60)", retryAtMs: START_MS + 61_000 },
  { reason: "over its tpm budget (60/100 tokens, needs 150)", retryAtMs: Number.POSITIVE_INFINITY },
  1,
  // The later of the rpm (60 s after the first) and the full slot: the rpm.
  { reason: "over its rpm budget (1/1)", retryAtMs: START_MS + 60_000 },
  { tokens: 40, requests: 0 },
];

describe("a charge of tokens alone (BudgetCost.isTokensOnly)", () => {
  test("BudgetBook: counts its tokens, no request, and neither checks nor holds a slot", async () => {
    assert.deepEqual(await history(new BudgetBook()), EXPECTED);
  });

  test("Redis: the same verdicts, no request and no concurrency lease in Redis", {
    skip: isRedisInstalled() ? false : REDIS_MISSING,
  }, async (t) => {
    const server = await useRedisServer(t);
    const clock = new ManualClock(START_MS);
    const state = await useRedisState(t, server.url, clock, "tokens-only:");
    assert.deepEqual(await history(state.ledger), EXPECTED);
    const admin = new Redis(server.url, { lazyConnect: true });
    t.after(() => admin.disconnect());
    await admin.connect();
    const base = budgetKeyBase("tokens-only:", CLIENT.id);
    // The minute holds the first request and the two charges of tokens (60, then 40 after the first left).
    assert.equal(await admin.hget(`${base}:win:60000:runs`, "r"), "0", "the first request left; no other counted");
    assert.equal(await admin.hget(`${base}:win:60000:runs`, "t"), "40");
    // One lease: the first request's, still in flight; the charges of tokens took none.
    assert.equal(await admin.zcard(`${base}:leases`), 1);
  });
});
