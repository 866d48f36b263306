// A candidate that is both cooling down and over a budget is usable only once both are over: the plan's skip, its
// wait for a better candidate and the 429's retry-after (soonest-available.ts) take the later time. Pure: a fixed
// `nowMs`, availability and budgets given per test.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TEST_ROUTING } from "../../test/fixtures/routing-settings.ts";
import { providerSettingsSchema } from "../config/schema.ts";
import type { Availability } from "../limits/availability.ts";
import { buildCatalog, type Deployment } from "../providers/catalog.ts";
import { planRoute, type RouterContext } from "./plan-route.ts";
import { soonestAvailableMs } from "./soonest-available.ts";

/** `good` (priority 10) and `fallback` (priority 1) both serve `m`. */
const catalog = buildCatalog(
  [
    providerSettingsSchema.parse({
      name: "good",
      base_url: "https://good.example/v1",
      api_key: "k",
      models: { m: { priority: 10 } },
    }),
    providerSettingsSchema.parse({
      name: "fallback",
      base_url: "https://fallback.example/v1",
      api_key: "k",
      models: { m: { priority: 1 } },
    }),
  ],
  new Map(),
);

const NOW_MS = 1_000_000;
const request = { model: "m", fallbackModels: [], kind: "chat" } as const;

interface Limits {
  /** Cooldown end per deployment key (a 429's). */
  readonly cooling?: Readonly<Record<string, number>>;
  /** Budget refusal time per deployment key. */
  readonly overBudget?: Readonly<Record<string, number>>;
}

function availabilityOf(limits: Limits): (deployment: Deployment) => Availability {
  return (deployment) => {
    const untilMs = limits.cooling?.[deployment.key];
    return untilMs === undefined
      ? { isAvailable: true, isProbe: false }
      : { isAvailable: false, untilMs, cause: "rate_limited", reason: "429" };
  };
}

function budgetCheckOf(limits: Limits): NonNullable<RouterContext["budgetCheck"]> {
  return (deployment) => {
    const untilMs = limits.overBudget?.[deployment.key];
    return untilMs === undefined ? undefined : { reason: "over its rpm budget (2/2)", untilMs };
  };
}

function context(limits: Limits): RouterContext {
  return {
    catalog,
    metaModels: {},
    routing: TEST_ROUTING,
    nowMs: NOW_MS,
    score: (deployment: Deployment) => deployment.model.priority,
    availability: availabilityOf(limits),
    budgetCheck: budgetCheckOf(limits),
  };
}

const skipOf = (plan: ReturnType<typeof planRoute>, key: string) =>
  plan.skipped.find((skip) => skip.deployment.key === key);

describe("a candidate cooling down and over a budget", () => {
  it("is skipped until the budget frees when that is later, and said so; else until the cooldown ends", () => {
    const plan = planRoute(
      request,
      context({ cooling: { "good/m": NOW_MS + 5_000 }, overBudget: { "good/m": NOW_MS + 40_000 } }),
    );
    const skip = skipOf(plan, "good/m");
    assert.equal(skip?.cause, "cooldown");
    assert.equal(skip?.untilMs, NOW_MS + 40_000);
    assert.equal(skip?.reason, "429; then over its rpm budget (2/2)");

    // A budget that frees first changes nothing: the cooldown's end and reason.
    const budgetFirst = planRoute(
      request,
      context({ cooling: { "good/m": NOW_MS + 5_000 }, overBudget: { "good/m": NOW_MS + 2_000 } }),
    );
    assert.equal(skipOf(budgetFirst, "good/m")?.untilMs, NOW_MS + 5_000);
    assert.equal(skipOf(budgetFirst, "good/m")?.reason, "429");
  });

  it("is not waited for when only its cooldown would end within max_wait_for_better_ms", () => {
    // The cooldown ends in 1 s (within the 2 s wait), the budget in 40 s: waiting would end in a refusal.
    const limits = { cooling: { "good/m": NOW_MS + 1_000 }, overBudget: { "good/m": NOW_MS + 40_000 } };
    const plan = planRoute(request, context(limits));
    assert.equal(plan.waitFor, undefined);
    assert.deepEqual(
      plan.candidates.map((candidate) => candidate.deployment.key),
      ["fallback/m"],
    );
    // Both short: waited for until the later of the two.
    const short = planRoute(
      request,
      context({ cooling: { "good/m": NOW_MS + 1_000 }, overBudget: { "good/m": NOW_MS + 1_500 } }),
    );
    assert.equal(short.waitFor?.deployment.key, "good/m");
    assert.equal(short.waitFor?.untilMs, NOW_MS + 1_500);
  });

  it("retry-after: the later of the cooldown and the budget", () => {
    const limits = {
      cooling: { "good/m": NOW_MS + 5_000, "fallback/m": NOW_MS + 50_000 },
      overBudget: { "good/m": NOW_MS + 40_000 },
    };
    const plan = planRoute(request, context(limits));
    assert.deepEqual(plan.candidates, []);
    assert.equal(soonestAvailableMs(plan, NOW_MS, availabilityOf(limits)), 40_000);
    // A second later the same plan still says the budget's time, less the second.
    assert.equal(soonestAvailableMs(plan, NOW_MS + 1_000, availabilityOf(limits)), 39_000);
  });

  it("retry-after of an attempted candidate that a 429 cooled and whose budget the attempt spent", () => {
    // Ready when planned; after its attempt it cools for 5 s and its rpm is spent for 40 s.
    const plan = planRoute({ ...request, model: "good/m" }, context({}));
    assert.deepEqual(
      plan.candidates.map((candidate) => candidate.deployment.key),
      ["good/m"],
    );
    const after = { cooling: { "good/m": NOW_MS + 5_000 }, overBudget: { "good/m": NOW_MS + 40_000 } };
    assert.equal(soonestAvailableMs(plan, NOW_MS, availabilityOf(after), budgetCheckOf(after)), 40_000);
    // Without the request's budget check only the cooldown is known.
    assert.equal(soonestAvailableMs(plan, NOW_MS, availabilityOf(after)), 5_000);
  });
});
