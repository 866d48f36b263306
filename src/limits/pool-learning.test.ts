// Learning an account-wide pool's limit: one model's 429 teaches the pool, and every model of the key is paced by
// it from then on. Injected time (every call takes its instant); a learner that learns per model fails each test.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import { BudgetBook, type BudgetScope, isReservation, learningScope } from "./budgets.ts";
import type { RefusalFacts } from "./limit-learning.ts";

/** 2026-01-01T12:00:00Z */
const T0 = Date.UTC(2026, 0, 1, 12);
const MINUTE_MS = 60_000;

function scope(id: string): BudgetScope {
  return { id, rules: [], concurrency: undefined, dayReset: UTC_MIDNIGHT };
}

/** One key's pool (no limits configured) and three of its models. */
const pool = scope("provider:openrouter");
const modelA = [pool, scope("deployment:openrouter/a")] as const;
const modelB = [pool, scope("deployment:openrouter/b")] as const;
const modelC = [pool, scope("deployment:openrouter/c")] as const;

/** Sends one request at `atMs` (reserved and answered at once); fails if the book refuses it. */
function send(book: BudgetBook, scopes: readonly BudgetScope[], atMs: number): number {
  const reservation = book.reserve(scopes, { tokens: 0 }, atMs);
  assert.ok(isReservation(reservation), `refused at +${atMs - T0} ms: ${JSON.stringify(reservation)}`);
  book.release(reservation);
  return reservation.atMs;
}

function isAllowed(book: BudgetBook, scopes: readonly BudgetScope[], atMs: number): boolean {
  return book.check(scopes, { tokens: 0 }, atMs).isAllowed;
}

/** What the recorder does with an account-wide 429's learn_limits effect. */
function learnAccountWide(book: BudgetBook, scopes: readonly BudgetScope[], refusal: RefusalFacts, nowMs: number) {
  const target = learningScope(scopes, true);
  assert.ok(target !== undefined);
  return { target, learned: book.learnLimits(target, refusal, nowMs) };
}

describe("learning an account-wide pool", () => {
  it("learningScope: the pool for an account-wide answer, the model's own scope otherwise or without a pool", () => {
    assert.equal(learningScope(modelA, true), pool);
    assert.equal(learningScope(modelA, false)?.id, "deployment:openrouter/a");
    const alone = [scope("deployment:groq/m")];
    assert.equal(learningScope(alone, true), alone[0], "no pool scope: the model's own");
    assert.equal(learningScope([], true), undefined);
  });

  it("a stated per-minute limit learned from one model's 429 paces its siblings, which never spend their own 429", () => {
    const book = new BudgetBook();
    // 20 requests accepted over the first 40 s, spread over the pool's models.
    for (let index = 0; index < 20; index++)
      send(book, [modelA, modelB, modelC][index % 3] ?? modelA, T0 + index * 2_000);
    // Model B's 21st request: OpenRouter's free-models-per-min 429 with x-ratelimit-limit: 20.
    const refusedAtMs = send(book, modelB, T0 + 41_000);
    const { target, learned } = learnAccountWide(
      book,
      modelB,
      {
        sentAtMs: refusedAtMs,
        kind: "short",
        hintDelayMs: 19_000,
        stated: [{ unit: "requests", window: "minute", limit: 20, evidence: "limit header (requests per minute: 20)" }],
      },
      T0 + 41_000,
    );
    assert.equal(target, pool);
    assert.deepEqual(
      learned.map((rule) => `${rule.window}=${rule.limit}`),
      ["minute=20"],
    );
    // Models A and C got no 429 of their own, yet they are paced by the pool: no request until the oldest leaves.
    assert.equal(isAllowed(book, modelA, T0 + 42_000), false, "model A is over the pool's learned limit");
    assert.equal(isAllowed(book, modelC, T0 + 59_999), false, "model C too");
    const verdict = book.check(modelC, { tokens: 0 }, T0 + 42_000);
    assert.ok(!verdict.isAllowed);
    assert.equal(verdict.scopeId, "provider:openrouter", "the pool is what is empty");
    assert.match(verdict.reason, /learned rpm limit \(20\/20; limit header/);
    assert.equal(verdict.retryAtMs, T0 + MINUTE_MS, "room when the first request leaves the minute");
    // The first request leaves the minute: one more fits, for any model of the pool, and then the pool is full again.
    send(book, modelC, T0 + MINUTE_MS);
    assert.equal(isAllowed(book, modelA, T0 + MINUTE_MS + 1), false);
    assert.equal(isAllowed(book, modelA, T0 + MINUTE_MS + 2_000), true);
    assert.deepEqual(book.learnedRules("deployment:openrouter/a"), [], "nothing learned per model");
  });

  it("the spacing is the pool's: a bare 429 right after a sibling's request is a per-second limit, not 1 a minute", () => {
    const book = new BudgetBook();
    // Mistral: one request per second per organization, a bare 429 without a hint or limit header.
    send(book, modelA, T0);
    send(book, modelA, T0 + 1_200);
    const refusedAtMs = send(book, modelB, T0 + 1_500);
    const { learned } = learnAccountWide(
      book,
      modelB,
      { sentAtMs: refusedAtMs, kind: "short", hintDelayMs: undefined, stated: [] },
      T0 + 1_500,
    );
    // Model B had sent nothing before: its own sends would teach nothing (or a minute limit from older ones).
    assert.deepEqual(
      learned.map((rule) => `${rule.window}=${rule.limit}`),
      ["second=1"],
    );
    assert.match(learned[0]?.evidence ?? "", /300 ms after the last accepted request/);
    // Paced per second across the pool: model A's next request waits for its previous one's second to pass.
    assert.equal(isAllowed(book, modelA, T0 + 2_100), false);
    assert.equal(isAllowed(book, modelC, T0 + 2_199), false);
    assert.equal(isAllowed(book, modelC, T0 + 2_200), true);
  });

  it("a fixed-window pool learned from one model reopens for every model at the boundary", () => {
    const book = new BudgetBook();
    for (let index = 0; index < 20; index++) send(book, index % 2 === 0 ? modelA : modelC, T0 + 10_000 + index * 1_000);
    const refusedAtMs = send(book, modelB, T0 + 35_000);
    learnAccountWide(
      book,
      modelB,
      {
        sentAtMs: refusedAtMs,
        kind: "short",
        hintDelayMs: 25_000,
        stated: [{ unit: "requests", window: "minute", limit: 20, evidence: "limit header (requests per minute: 20)" }],
        algorithm: "fixed",
        offsetMs: 0,
      },
      T0 + 35_000,
    );
    assert.equal(isAllowed(book, modelA, T0 + 59_999), false, "the minute is the pool's, used up");
    assert.equal(isAllowed(book, modelC, T0 + MINUTE_MS), true, "the whole minute reopens at once");
    for (let index = 0; index < 20; index++) send(book, modelA, T0 + MINUTE_MS + index);
    assert.equal(isAllowed(book, modelC, T0 + MINUTE_MS + 100), false);
  });
});
