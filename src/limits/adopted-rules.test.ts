// Rate limits another process was stated (BudgetBook.adoptStatedRules, passed on by redis-learned-facts.ts) become
// rules of the scope by the path a 429's own lessons take: a configured unit and window wins, a window new to the
// scope starts with this process's own recent sends, and the shared scope carries them from the next reserve on.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import { BudgetBook, type BudgetRule, type BudgetScope, isReservation, rulesFromLimits } from "./budgets.ts";

const T0 = Date.UTC(2026, 11, 5, 12);
const STATED_RPM: BudgetRule = { unit: "requests", window: "minute", limit: 3, learnedFrom: 'body: "RPM: Limit 3"' };

function scopeOf(limits: Parameters<typeof rulesFromLimits>[0] = undefined): BudgetScope {
  return { id: "deployment:p/m", ...rulesFromLimits(limits), dayReset: UTC_MIDNIGHT };
}

function reserves(book: BudgetBook, scope: BudgetScope, atMs: number): boolean {
  return isReservation(book.reserve([scope], { tokens: 0 }, atMs));
}

describe("stated rate limits adopted from another process", () => {
  it("pace the scope from the next check, counting this process's own sends of the window", () => {
    const book = new BudgetBook();
    const scope = scopeOf();
    assert.ok(reserves(book, scope, T0));
    assert.ok(reserves(book, scope, T0 + 1_000));
    book.adoptStatedRules(scope.id, [STATED_RPM]);
    // Two of the three already sent this minute: one more, then the window is full until the first send leaves it.
    assert.ok(reserves(book, scope, T0 + 2_000));
    const verdict = book.check([scope], { tokens: 0 }, T0 + 3_000);
    assert.equal(verdict.isAllowed, false);
    assert.match(verdict.isAllowed ? "" : verdict.reason, /learned rpm limit \(3\/3; body: "RPM: Limit 3"\)/);
    assert.equal(verdict.isAllowed ? 0 : verdict.retryAtMs, T0 + 60_000);
    const [usage] = book.usage(scope, T0 + 3_000);
    assert.deepEqual([usage?.source, usage?.limit, usage?.used], ["learned", 3, 3]);
  });

  it("are among the shared scope's rules before the scope is checked, and the configured window wins", () => {
    const book = new BudgetBook();
    const open = scopeOf();
    book.adoptStatedRules(open.id, [STATED_RPM, { ...STATED_RPM, window: "day", limit: 100 }]);
    assert.deepEqual(
      book.sharedScope(open, T0).rules.map((rule) => `${rule.window}=${rule.limit}`),
      ["minute=3", "day=100"],
    );

    const configured = new BudgetBook();
    const scope = scopeOf({ rpm: 10 });
    configured.adoptStatedRules(scope.id, [STATED_RPM]);
    assert.deepEqual(
      configured.sharedScope(scope, T0).rules.map((rule) => `${rule.window}=${rule.limit}:${rule.learnedFrom}`),
      ["minute=10:undefined"],
    );
  });

  it("replace a limit this process inferred, even an equal one: the key's limit, shared and not lapsing", () => {
    const book = new BudgetBook();
    const scope = scopeOf();
    assert.ok(reserves(book, scope, T0));
    assert.ok(reserves(book, scope, T0 + 10_000));
    assert.ok(reserves(book, scope, T0 + 20_000));
    // A 429 without a stated limit, 30 s after three accepted sends: 3 per minute, inferred.
    book.learnLimits(scope, { sentAtMs: T0 + 30_000, kind: "short", hintDelayMs: 30_000, stated: [] }, T0 + 30_000);
    assert.equal(book.learnedRules(scope.id)[0]?.isOwnEvidence, true);
    assert.equal(book.hasOwnEvidence([scope]), true);
    book.adoptStatedRules(scope.id, [STATED_RPM]);
    assert.equal(book.check([scope], { tokens: 0 }, T0 + 31_000).isAllowed, false, "still full");
    assert.deepEqual(book.learnedRules(scope.id), [{ ...STATED_RPM }]);
    assert.equal(book.hasOwnEvidence([scope]), false);
    assert.equal(book.sharedScope(scope, T0 + 31_000).rules[0]?.limit, 3);
  });

  it("ignore one that claims to be inferred, and are dropped when the scope is forgotten", () => {
    const book = new BudgetBook();
    const scope = scopeOf();
    book.adoptStatedRules(scope.id, [{ ...STATED_RPM, isOwnEvidence: true }]);
    assert.deepEqual(book.sharedScope(scope, T0).rules, []);
    book.adoptStatedRules(scope.id, [STATED_RPM]);
    book.forget(scope.id);
    assert.deepEqual(book.sharedScope(scope, T0).rules, []);
  });
  it("go when another process forgot the scope, with a stated concurrency; inferred limits and counts stay", () => {
    const book = new BudgetBook();
    const scope = scopeOf({ rpd: 100 });
    book.adoptStatedRules(scope.id, [STATED_RPM, { ...STATED_RPM, window: "hour", limit: 50 }]);
    assert.ok(reserves(book, scope, T0));
    assert.ok(reserves(book, scope, T0 + 10_000));
    // A 429 stating nothing, just after two accepted sends: a limit inferred from this process's own spacing.
    book.learnLimits(scope, { sentAtMs: T0 + 10_500, kind: "short", hintDelayMs: 1_000, stated: [] }, T0 + 10_500);
    book.adoptLearnedConcurrency(scope.id, { limit: 2, evidence: "429 stating 2 in flight", learnedAtMs: T0 });
    const inferred = book.learnedRules(scope.id).filter((rule) => rule.isOwnEvidence === true);
    assert.ok(inferred.length > 0, "the 429 taught an inferred limit");
    assert.equal(book.learnedRules(scope.id).length, inferred.length + 2);

    book.adoptForgottenStated(scope.id);
    assert.deepEqual(book.learnedRules(scope.id), inferred);
    assert.equal(book.learnedConcurrency(scope.id, T0 + 11_000), undefined);
    const [usage] = book.usage(scope, T0 + 11_000).filter((window) => window.window === "day");
    assert.equal(usage?.used, 2, "the scope's counts were forgotten with the stated limits");
    // Pending ones (adopted, the scope not read since) go too.
    book.adoptStatedRules("deployment:p/other", [STATED_RPM]);
    book.adoptForgottenStated("deployment:p/other");
    assert.equal(book.sharedScope({ ...scope, id: "deployment:p/other" }, T0).rules.length, 1, "more than its rpd");
  });
});
