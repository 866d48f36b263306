// Each learning rule against an injected clock: per second from the spacing of 429s, per minute and per day from
// the headers and bodies of each dialect the presets use, and the pacing that follows.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  cerebras,
  gemini,
  githubModels,
  groq,
  mistral,
  NOW_MS,
  openAi,
  openRouter,
  type ResponseFixture,
  together,
} from "../../test/fixtures/provider-fixtures.ts";
import { UTC_MIDNIGHT } from "../config/day-reset.ts";
import {
  BudgetBook,
  type BudgetScope,
  INFERRED_CONCURRENCY_LIFETIME_MS,
  INFERRED_LIMIT_LIFETIME_MS,
  isReservation,
  RECOVERY_INTERVAL_MS,
  rulesFromLimits,
} from "./budgets.ts";
import { classifyRateLimit } from "./classify-429.ts";
import { RATE_LIMIT_DIALECTS, type RateLimitDialectName } from "./header-dialects.ts";
import { concurrencyFromBody, type LearnedRule, type RefusalFacts, statedLimits } from "./limit-learning.ts";
import { retryHintFromResponse } from "./retry-hint.ts";

const T0 = NOW_MS;

function scopeOf(id = "deployment:p/m", limits: Parameters<typeof rulesFromLimits>[0] = undefined): BudgetScope {
  return { id, ...rulesFromLimits(limits), dayReset: UTC_MIDNIGHT };
}

/** Sends at each time (all accepted until the last), as the recorder would reserve them. */
function send(book: BudgetBook, scope: BudgetScope, atMs: number): void {
  assert.ok(isReservation(book.reserve([scope], { tokens: 0 }, atMs)), `send at +${atMs - T0} ms`);
}

function refusal(sentAtMs: number, overrides: Partial<RefusalFacts> = {}): RefusalFacts {
  return { sentAtMs, kind: "short", hintDelayMs: undefined, stated: [], ...overrides };
}

/** What the gateway reads from a fixture 429: the facts `lessons.ts` hands the recorder. */
function factsOf(fixture: ResponseFixture, dialect: RateLimitDialectName, sentAtMs: number): RefusalFacts {
  const kind = classifyRateLimit(fixture).kind;
  const hint = retryHintFromResponse({ ...fixture, nowMs: sentAtMs });
  return {
    sentAtMs,
    kind,
    hintDelayMs: hint?.delayMs,
    stated: statedLimits(fixture.headers, fixture.bodyText, RATE_LIMIT_DIALECTS[dialect], sentAtMs),
  };
}

/** `book`'s scope saved and loaded into a fresh book, through JSON as the embedded store's rows are. */
function reloaded(book: BudgetBook, scopeId: string): BudgetBook {
  const exported = book.exportScope(scopeId);
  assert.ok(exported !== undefined);
  const restored = new BudgetBook();
  restored.importScope(scopeId, JSON.parse(JSON.stringify(exported)));
  return restored;
}

function pick(rules: readonly LearnedRule[]): string[] {
  return rules.map((rule) => `${rule.unit}/${rule.window}=${rule.limit}`).sort();
}

describe("learning limits from 429s: spacing", () => {
  it("a 429 on the second request within a second teaches a per-second limit, and paces to it", () => {
    const book = new BudgetBook();
    const scope = scopeOf();
    send(book, scope, T0);
    send(book, scope, T0 + 300); // refused by the provider
    const learned = book.learnLimits(scope, refusal(T0 + 300), T0 + 310);
    assert.deepEqual(pick(learned), ["requests/second=1"]);
    assert.match(learned[0]?.evidence ?? "", /300 ms after the last accepted request/);
    const verdict = book.check([scope], { tokens: 0 }, T0 + 400);
    assert.ok(!verdict.isAllowed);
    assert.match(verdict.reason, /learned rps limit/);
    assert.equal(verdict.retryAtMs, T0 + 1_000, "one second after the accepted request");
    assert.equal(book.check([scope], { tokens: 0 }, T0 + 1_000).isAllowed, true);
    // Paced: one a second goes through, a second one in the same second does not.
    send(book, scope, T0 + 1_000);
    assert.equal(book.check([scope], { tokens: 0 }, T0 + 1_500).isAllowed, false);
  });

  it("an inferred limit lapses INFERRED_LIMIT_LIFETIME_MS after the 429 that last taught or confirmed it", () => {
    const lifetimeMs = INFERRED_LIMIT_LIFETIME_MS.second ?? 0;
    assert.ok(lifetimeMs >= 60_000);
    const book = new BudgetBook();
    const scope = scopeOf();
    send(book, scope, T0);
    send(book, scope, T0 + 300); // refused: 1 per second
    const [rule] = book.learnLimits(scope, refusal(T0 + 300), T0 + 310);
    assert.equal(rule?.isOwnEvidence, true);
    // Paced until the lifetime is over, however long it is since the last send.
    const paced = (atMs: number): boolean => {
      send(book, scope, atMs);
      return !book.check([scope], { tokens: 0 }, atMs + 10).isAllowed;
    };
    const halfWayMs = T0 + lifetimeMs / 2;
    assert.ok(paced(halfWayMs));
    // A 429 teaching the same limit again (one accepted in the second before it) confirms it: its lifetime starts
    // over.
    const confirmedAtMs = halfWayMs + 210;
    book.learnLimits(scope, refusal(halfWayMs + 200, { hintDelayMs: 300 }), confirmedAtMs);
    assert.deepEqual(pick(book.learnedRules(scope.id).map((known) => ({ ...known, evidence: "" }))), [
      "requests/second=1",
    ]);
    assert.ok(paced(T0 + lifetimeMs + 5_000), "still paced: confirmed half-way");
    assert.ok(paced(confirmedAtMs + lifetimeMs - 2_000));
    // Lapsed: unpaced (several a second) until a 429 teaches the limit anew.
    send(book, scope, confirmedAtMs + lifetimeMs);
    assert.equal(book.check([scope], { tokens: 0 }, confirmedAtMs + lifetimeMs + 10).isAllowed, true);
    assert.deepEqual(book.learnedRules(scope.id), []);
    // A persisted inferred limit keeps its age; a stated one never lapses.
    const stated = new BudgetBook();
    stated.learnLimits(
      scope,
      refusal(T0, { stated: [{ unit: "requests", window: "minute", limit: 5, evidence: "body" }] }),
      T0,
    );
    const restored = reloaded(stated, scope.id);
    for (let index = 0; index < 5; index++) send(restored, scope, T0 + 10 * 24 * 3_600_000 + index);
    assert.equal(restored.check([scope], { tokens: 0 }, T0 + 10 * 24 * 3_600_000 + 10).isAllowed, false);
    const inferred = new BudgetBook();
    send(inferred, scope, T0);
    send(inferred, scope, T0 + 300);
    inferred.learnLimits(scope, refusal(T0 + 300), T0 + 310);
    const again = reloaded(inferred, scope.id);
    assert.equal(again.learnedRules(scope.id).length, 1);
    send(again, scope, T0 + lifetimeMs + 310);
    assert.equal(again.check([scope], { tokens: 0 }, T0 + lifetimeMs + 320).isAllowed, true);
  });

  it("a limit a later 429 lowers climbs back toward the highest one inferred, a step per RECOVERY_INTERVAL_MS", () => {
    const intervalMs = RECOVERY_INTERVAL_MS.second ?? 0;
    assert.ok(intervalMs >= 1_000);
    const book = new BudgetBook();
    const scope = scopeOf();
    /** How many sends a fresh second (nothing sent in the second before) takes before the book refuses. */
    const roomIn = (fromMs: number): number => {
      let sent = 0;
      while (book.check([scope], { tokens: 0 }, fromMs + sent).isAllowed) {
        send(book, scope, fromMs + sent);
        sent++;
        if (sent > 100) break;
      }
      return sent;
    };
    // Ten accepted within a second, the eleventh refused: 10 per second.
    for (let index = 0; index < 11; index++) send(book, scope, T0 + index * 10);
    book.learnLimits(scope, refusal(T0 + 100, { hintDelayMs: 300 }), T0 + 110);
    assert.deepEqual(pick(book.learnedRules(scope.id).map((rule) => ({ ...rule, evidence: "" }))), [
      "requests/second=10",
    ]);
    assert.equal(book.learnedRules(scope.id)[0]?.recovery, undefined, "the first limit learned does not climb");
    // Later, four accepted in the second before a 429: the key's share (or a transient refusal) says 4.
    const lowMs = T0 + 10_000;
    for (let index = 0; index < 5; index++) send(book, scope, lowMs + index * 100);
    book.learnLimits(scope, refusal(lowMs + 400, { hintDelayMs: 300 }), lowMs + 410);
    const lowered = book.learnedRules(scope.id)[0];
    assert.equal(lowered?.limit, 4);
    assert.deepEqual(lowered?.recovery, {
      ceiling: 10,
      nextStepAtMs: lowMs + 410 + intervalMs,
      intervalMs,
      loweredAtMs: lowMs + 410,
    });
    assert.equal(roomIn(lowMs + 2_000), 4, "paced at the lowered limit");
    // A 429 confirming the current limit (four accepted in the second before a request the book did not count)
    // keeps it, and does not put the climb off.
    for (let index = 0; index < 4; index++) send(book, scope, lowMs + 3_000 + index * 100);
    book.learnLimits(scope, refusal(lowMs + 3_350, { hintDelayMs: 300 }), lowMs + 3_360);
    assert.equal(book.learnedRules(scope.id)[0]?.limit, 4);
    assert.equal(book.learnedRules(scope.id)[0]?.recovery?.nextStepAtMs, lowMs + 410 + intervalMs);
    // One step (10 % of the ceiling, at least 1) per interval without a lowering 429.
    const firstStepMs = lowMs + 410 + intervalMs;
    assert.equal(roomIn(firstStepMs), 5);
    const usage = book.usage(scope, firstStepMs + 1_000)[0];
    assert.equal(usage?.recoversTo, 10);
    assert.equal(usage?.nextStepAtMs, firstStepMs + intervalMs);
    // Steps due while nobody looked are taken at once; at the ceiling the climb ends.
    const topMs = firstStepMs + 10 * intervalMs;
    assert.equal(roomIn(topMs), 10);
    assert.equal(book.learnedRules(scope.id)[0]?.recovery, undefined);
    assert.equal(book.learnedRules(scope.id)[0]?.limit, 10);
  });

  it("a 429 lowering a climbing limit doubles the wait for its next step; the ceiling stays the highest", () => {
    const intervalMs = RECOVERY_INTERVAL_MS.second ?? 0;
    const book = new BudgetBook();
    const scope = scopeOf();
    /** `accepted` sends 10 ms apart, then a 429 on the next one: the provider took `accepted` in that second. */
    const teach = (atMs: number, accepted: number): void => {
      for (let index = 0; index < accepted + 1; index++) send(book, scope, atMs + index * 10);
      book.learnLimits(scope, refusal(atMs + accepted * 10, { hintDelayMs: 300 }), atMs + accepted * 10 + 5);
    };
    teach(T0, 20);
    teach(T0 + 10_000, 8);
    assert.equal(book.learnedRules(scope.id)[0]?.recovery?.intervalMs, intervalMs);
    // One step later (8 -> 10), lowered again: the ceiling stays 20, the next step waits twice as long.
    const againMs = T0 + 10_000 + intervalMs + 2_000;
    teach(againMs, 6);
    const rule = book.learnedRules(scope.id)[0];
    assert.equal(rule?.limit, 6);
    assert.deepEqual(rule?.recovery, {
      ceiling: 20,
      nextStepAtMs: againMs + 65 + 2 * intervalMs,
      intervalMs: 2 * intervalMs,
      loweredAtMs: againMs + 65,
    });
    // A lower reading within the interval of the last lowering lowers it no further (a confirmation): paced at a
    // limit, any 429 reads below it, and refusals that do not follow our rate would take it down one by one.
    teach(againMs + 2_000, 3);
    assert.equal(book.learnedRules(scope.id)[0]?.limit, 6);
    assert.equal(book.learnedRules(scope.id)[0]?.learnedAtMs, againMs + 2_035);
    // Lowered again and again, each time an interval after the last (a step up in between): the wait doubles up to
    // 16 intervals, no further.
    let lowerAtMs = againMs + 65;
    for (const accepted of [5, 4, 3, 2, 1]) {
      const waitMs = book.learnedRules(scope.id)[0]?.recovery?.intervalMs ?? 0;
      teach(lowerAtMs + waitMs + 1_000, accepted);
      lowerAtMs += waitMs + 1_000 + accepted * 10 + 5;
      assert.equal(book.learnedRules(scope.id)[0]?.limit, accepted);
    }
    assert.equal(book.learnedRules(scope.id)[0]?.recovery?.intervalMs, 16 * intervalMs);
    // Kept with the limit when the book is saved and loaded (embedded state).
    const restored = reloaded(book, scope.id);
    assert.deepEqual(restored.learnedRules(scope.id)[0]?.recovery, book.learnedRules(scope.id)[0]?.recovery);
    // The other client gone: the first step comes 16 intervals after the last lowering, and each step after one that
    // held halves the wait again (8, 4, 2, then 1 interval): 1 -> 20 in 35 intervals instead of 16 * 10.
    const firstStepMs = book.learnedRules(scope.id)[0]?.recovery?.nextStepAtMs ?? 0;
    assert.equal(firstStepMs, lowerAtMs + 16 * intervalMs);
    const climb = [0, 16, 24, 28, 30, 31, 32].map((intervals) => {
      const usage = book.usage(scope, firstStepMs + intervals * intervalMs)[0];
      return `${usage?.limit}@+${((usage?.nextStepAtMs ?? 0) - firstStepMs) / intervalMs}`;
    });
    assert.deepEqual(climb, ["3@+16", "5@+24", "7@+28", "9@+30", "11@+31", "13@+32", "15@+33"]);
    assert.equal(book.usage(scope, firstStepMs + 35 * intervalMs)[0]?.limit, 20);
    // Climbed back to the ceiling: no longer climbing; a later lowering starts over with one interval.
    const topMs = lowerAtMs + 16 * intervalMs * 20;
    assert.equal(book.usage(scope, topMs)[0]?.limit, 20);
    assert.equal(book.learnedRules(scope.id)[0]?.recovery, undefined);
    teach(topMs + 1_000, 12);
    assert.deepEqual(book.learnedRules(scope.id)[0]?.recovery?.intervalMs, intervalMs);
  });

  it("a retry hint of at most a second means per second, whatever the gap", () => {
    const book = new BudgetBook();
    const scope = scopeOf();
    for (const offsetMs of [0, 200, 400, 600]) send(book, scope, T0 + offsetMs);
    const learned = book.learnLimits(scope, refusal(T0 + 600, { hintDelayMs: 400 }), T0 + 610);
    assert.deepEqual(pick(learned), ["requests/second=3"]);
  });

  it("a 429 asking to wait seconds, after requests spaced over the minute, teaches a per-minute limit", () => {
    const book = new BudgetBook();
    const scope = scopeOf();
    for (let index = 0; index < 30; index++) send(book, scope, T0 + index * 2_000);
    const sentAtMs = T0 + 30 * 2_000 - 500;
    send(book, scope, sentAtMs);
    const learned = book.learnLimits(scope, refusal(sentAtMs, { hintDelayMs: 1_500 }), sentAtMs + 10);
    // All 30 accepted sends are within the minute before the refused one.
    assert.deepEqual(pick(learned), ["requests/minute=30"]);
    assert.equal(book.check([scope], { tokens: 0 }, sentAtMs + 10).isAllowed, false);
    const usage = book.usage(scope, sentAtMs + 10).find((window) => window.source === "learned");
    assert.equal(usage?.limit, 30);
    assert.equal(usage?.used, 30);
    assert.match(usage?.evidence ?? "", /asking to wait 1500 ms after 30 accepted/);
  });

  it("a wait much shorter than our oldest request's stay in the minute teaches no per-minute limit", () => {
    const book = new BudgetBook();
    const scope = scopeOf();
    send(book, scope, T0);
    send(book, scope, T0 + 10);
    // One accepted request 10 ms ago would keep a sliding "1 per minute" full for 60 s, not 30.
    assert.deepEqual(book.learnLimits(scope, refusal(T0 + 10, { hintDelayMs: 30_000 }), T0 + 20), []);
    // The same wait after requests spread over the minute is consistent with a per-minute limit.
    const spread = new BudgetBook();
    for (const offsetMs of [0, 20_000, 40_000]) send(spread, scope, T0 + offsetMs);
    send(spread, scope, T0 + 30_000 + 20_000);
    assert.deepEqual(pick(spread.learnLimits(scope, refusal(T0 + 50_000, { hintDelayMs: 10_000 }), T0 + 50_010)), [
      "requests/minute=3",
    ]);
  });

  it("a 429 on the very first request teaches no limit (only the cooldown applies)", () => {
    const book = new BudgetBook();
    const scope = scopeOf();
    send(book, scope, T0);
    assert.deepEqual(book.learnLimits(scope, refusal(T0), T0 + 5), []);
    assert.equal(book.learnedRules(scope.id).length, 0);
  });

  it("capacity and credits refusals teach nothing about the key", () => {
    const book = new BudgetBook();
    const scope = scopeOf();
    send(book, scope, T0);
    send(book, scope, T0 + 100);
    assert.deepEqual(book.learnLimits(scope, refusal(T0 + 100, { kind: "capacity" }), T0 + 110), []);
    assert.deepEqual(book.learnLimits(scope, refusal(T0 + 100, { kind: "credits" }), T0 + 110), []);
  });

  it("a daily quota without a stated limit is what was accepted today", () => {
    const book = new BudgetBook();
    const scope = scopeOf();
    for (let index = 0; index < 6; index++) send(book, scope, T0 + index * 60_000);
    const learned = book.learnLimits(scope, refusal(T0 + 5 * 60_000, { kind: "daily" }), T0 + 5 * 60_000);
    assert.deepEqual(pick(learned), ["requests/day=5"]);
  });

  it("a configured limit of the same window wins over a learned one", () => {
    const book = new BudgetBook();
    const scope = scopeOf("deployment:p/m", { rps: 5 });
    send(book, scope, T0);
    send(book, scope, T0 + 100);
    book.learnLimits(scope, refusal(T0 + 100), T0 + 110);
    assert.equal(book.learnedRules(scope.id).length, 0);
  });

  it("learned limits and their evidence survive export and import (the embedded store's rows)", () => {
    const book = new BudgetBook();
    const scope = scopeOf();
    send(book, scope, T0);
    send(book, scope, T0 + 300);
    book.learnLimits(scope, refusal(T0 + 300), T0 + 310);
    const restored = reloaded(book, scope.id);
    assert.equal(restored.learnedRules(scope.id)[0]?.limit, 1);
    send(restored, scope, T0 + 5_000);
    assert.equal(restored.check([scope], { tokens: 0 }, T0 + 5_500).isAllowed, false);
  });

  it("a learned limit in a bucket provider counts as a bucket", () => {
    const book = new BudgetBook();
    const scope = scopeOf();
    for (let index = 0; index < 3; index++) send(book, scope, T0 + index * 10_000);
    book.learnLimits(scope, refusal(T0 + 20_000, { hintDelayMs: 5_000, algorithm: "bucket" }), T0 + 20_010);
    assert.equal(book.learnedRules(scope.id)[0]?.algorithm, "bucket");
    assert.equal(book.learnedRules(scope.id)[0]?.limit, 2);
  });
});

describe("learning limits from 429s: what each dialect states", () => {
  const cases: readonly {
    readonly name: string;
    readonly fixture: ResponseFixture;
    readonly dialect: RateLimitDialectName;
    readonly expected: readonly string[];
  }[] = [
    {
      name: "OpenAI: headers and 'tokens per min (TPM): Limit 30000'",
      fixture: openAi.tokensPerMinute429,
      dialect: "openai",
      expected: ["requests/minute=500", "tokens/minute=30000"],
    },
    {
      name: "Groq TPM: headers (requests per day, tokens per minute) and the body",
      fixture: groq.tokensPerMinute429,
      dialect: "groq",
      expected: ["requests/day=1000", "tokens/minute=12000"],
    },
    {
      name: "Groq TPD: the body alone ('tokens per day (TPD): Limit 100000')",
      fixture: groq.tokensPerDay429,
      dialect: "groq",
      expected: ["tokens/day=100000"],
    },
    {
      name: "Groq RPD: headers and body agree",
      fixture: groq.requestsPerDay429,
      dialect: "groq",
      expected: ["requests/day=1000"],
    },
    {
      name: "Cerebras RPM: per-window headers",
      fixture: cerebras.requestsPerMinute429,
      dialect: "cerebras",
      expected: ["requests/day=2400", "requests/minute=5"],
    },
    {
      name: "OpenRouter per minute: X-RateLimit-Limit",
      fixture: openRouter.freeModelsPerMinute429,
      dialect: "openrouter",
      expected: ["requests/minute=20"],
    },
    {
      name: "Mistral: req-minute and token windows",
      fixture: mistral.rateLimited429,
      dialect: "mistral",
      expected: ["requests/minute=2", "tokens/minute=500000"],
    },
    {
      name: "Together: per-second headers",
      fixture: together.rateLimited429,
      dialect: "together",
      expected: ["requests/second=1", "tokens/second=1000"],
    },
    {
      name: "Gemini per minute: QuotaFailure id and value",
      fixture: gemini.perMinute429,
      dialect: "generic",
      expected: ["requests/minute=10"],
    },
    {
      name: "Gemini per day: every violation (tokens per minute, requests per minute and per day)",
      fixture: gemini.perDay429,
      dialect: "generic",
      expected: ["requests/day=10", "requests/minute=10", "tokens/minute=10"],
    },
    {
      name: "GitHub Models per day: 'Rate limit of 50 per 86400s'",
      fixture: githubModels.perDay429,
      dialect: "generic",
      expected: ["requests/day=50"],
    },
  ];
  for (const { name, fixture, dialect, expected } of cases) {
    it(name, () => {
      const stated = statedLimits(fixture.headers, fixture.bodyText, RATE_LIMIT_DIALECTS[dialect], T0);
      assert.deepEqual(pick(stated), [...expected].sort());
      for (const rule of stated) assert.ok(rule.evidence.length > 0);
    });
  }

  it("OpenRouter's free-models-per-day limit relayed in the body is a daily limit", () => {
    const stated = statedLimits(
      openRouter.freeModelsPerDay429.headers,
      openRouter.freeModelsPerDay429.bodyText,
      RATE_LIMIT_DIALECTS.openrouter,
      T0,
    );
    assert.ok(
      stated.some((rule) => rule.window === "day" && rule.unit === "requests"),
      JSON.stringify(stated),
    );
  });

  it("a stated per-minute limit paces the deployment from the first 429 on", () => {
    const book = new BudgetBook();
    const scope = scopeOf();
    for (let index = 0; index < 5; index++) send(book, scope, T0 + index * 1_000);
    book.learnLimits(scope, factsOf(cerebras.requestsPerMinute429, "cerebras", T0 + 5_000), T0 + 5_000);
    assert.equal(book.check([scope], { tokens: 0 }, T0 + 5_010).isAllowed, false);
    assert.equal(book.check([scope], { tokens: 0 }, T0 + 60_000).isAllowed, true);
  });
});

describe("learning from GitHub Models' named limits", () => {
  /** Reserves one request at `atMs` and returns it, as the recorder holds it while the request is in flight. */
  function reserve(book: BudgetBook, scope: BudgetScope, atMs: number) {
    const reservation = book.reserve([scope], { tokens: 0 }, atMs);
    assert.ok(isReservation(reservation));
    return reservation;
  }

  it("a concurrency 429 teaches the stated number in flight, never a per-second rate", () => {
    const book = new BudgetBook();
    const scope = scopeOf();
    reserve(book, scope, T0);
    const second = reserve(book, scope, T0 + 100);
    const refused = reserve(book, scope, T0 + 200);
    const facts = factsOf(githubModels.concurrent429, "generic", T0 + 200);
    assert.equal(facts.kind, "concurrency");
    const statedConcurrency = concurrencyFromBody(githubModels.concurrent429.bodyText);
    assert.equal(statedConcurrency, 2);
    // The lessons are applied before the refused request's reservation is released (recorder.ts).
    assert.deepEqual(book.learnLimits(scope, { ...facts, statedConcurrency }, T0 + 200), []);
    book.release(refused);
    assert.deepEqual(book.learnedRules(scope.id), [], "no rate was learned");
    assert.equal(book.learnedConcurrency(scope.id, T0 + 200)?.limit, 2);
    // Seconds later, while both are still in flight, a third is refused without an upstream request...
    const denied = book.check([scope], { tokens: 0 }, T0 + 5_000);
    assert.equal(denied.isAllowed, false);
    assert.match(denied.isAllowed ? "" : denied.reason, /learned concurrency limit \(2 in flight/);
    // ...and admitted the moment one of them ends, whatever the time.
    book.release(second);
    assert.equal(book.check([scope], { tokens: 0 }, T0 + 5_001).isAllowed, true);
  });

  it("without a stated number, the requests in flight beside the refused one; with none, nothing", () => {
    const book = new BudgetBook();
    const scope = scopeOf();
    const bare = { sentAtMs: T0, kind: "concurrency", hintDelayMs: 0, stated: [] } as const;
    // Alone in flight: the key's other clients hold the slots, nothing to learn from ours.
    const alone = reserve(book, scope, T0);
    book.learnLimits(scope, bare, T0);
    book.release(alone);
    assert.equal(book.learnedConcurrency(scope.id, T0), undefined);
    const first = reserve(book, scope, T0 + 1_000);
    const refused = reserve(book, scope, T0 + 1_100);
    book.learnLimits(scope, { ...bare, sentAtMs: T0 + 1_100 }, T0 + 1_100);
    book.release(refused);
    assert.equal(book.learnedConcurrency(scope.id, T0 + 1_100)?.limit, 1);
    assert.equal(book.check([scope], { tokens: 0 }, T0 + 1_200).isAllowed, false);
    book.release(first);
    assert.equal(book.check([scope], { tokens: 0 }, T0 + 1_200).isAllowed, true);
    // Inferred, it lapses as an inferred per-minute rate does.
    assert.equal(book.learnedConcurrency(scope.id, T0 + 1_100 + INFERRED_CONCURRENCY_LIFETIME_MS), undefined);
  });

  it("a UserByModelByDay 429 with only its headers teaches the day's limit (was read as a short window: nothing)", () => {
    const book = new BudgetBook();
    const scope = scopeOf();
    // Three accepted, the fourth refused.
    for (let index = 0; index < 4; index++) send(book, scope, T0 + index * 60_000);
    const facts = factsOf(githubModels.perDayHeaders429, "generic", T0 + 200_000);
    assert.equal(facts.kind, "daily");
    assert.equal(facts.hintDelayMs, 24_367_000);
    assert.deepEqual(pick(book.learnLimits(scope, facts, T0 + 200_000)), ["requests/day=3"]);
  });
});

describe("limits stated in a body are read from its error's message", () => {
  it("another provider's limit quoted in OpenRouter's previous_errors is not this key's", () => {
    const bodyText = JSON.stringify({
      error: {
        message: "Rate limit exceeded: free-models-per-min. ",
        code: 429,
        metadata: {
          previous_errors: [
            { provider: "Groq", message: "Rate limit reached on tokens per day (TPD): Limit 100000, Used 99000" },
            { provider: "GitHub", message: "Rate limit of 2 per 0s exceeded for UserConcurrentRequests" },
          ],
        },
      },
    });
    assert.deepEqual(statedLimits({}, bodyText, RATE_LIMIT_DIALECTS.openai, T0), []);
    assert.equal(concurrencyFromBody(bodyText), undefined);
    // The message's own phrase is read as before.
    const stated = statedLimits({}, groq.tokensPerDay429.bodyText, RATE_LIMIT_DIALECTS.openai, T0);
    assert.deepEqual(
      stated.map((rule) => [rule.unit, rule.window, rule.limit]),
      [["tokens", "day", 100000]],
    );
  });
});
