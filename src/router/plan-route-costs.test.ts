// The planner's cost rules (docs/routing.md "Free and paid models") and pool labels, pure: no server, no clock.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TEST_ROUTING } from "../../test/fixtures/routing-settings.ts";
import { providerSettingsSchema } from "../config/schema.ts";
import type { RoutingSettings } from "../config/types.ts";
import type { Availability } from "../limits/availability.ts";
import { buildCatalog, type Deployment } from "../providers/catalog.ts";
import { planRoute, type RouterContext } from "./plan-route.ts";

const ROUTING: RoutingSettings = { ...TEST_ROUTING, paid: "last_resort" };

/** `paid` (priority 10) and `free` (priority 1) both serve `m`. */
const catalog = buildCatalog(
  [
    providerSettingsSchema.parse({
      name: "paid",
      base_url: "https://paid.example/v1",
      api_key: "k",
      models: { m: { priority: 10 } },
    }),
    providerSettingsSchema.parse({
      name: "free",
      base_url: "https://free.example/v1",
      api_key: "k",
      cost: "free",
      models: { m: { priority: 1 } },
    }),
  ],
  new Map(),
);

const NOW_MS = 1_000_000;

function context(
  paid: RoutingSettings["paid"],
  cooling: Readonly<Record<string, number>> = {},
  extra: Partial<RouterContext> = {},
): RouterContext {
  return {
    catalog,
    metaModels: {},
    routing: { ...ROUTING, paid },
    nowMs: NOW_MS,
    score: (deployment: Deployment) => deployment.model.priority,
    availability: (deployment: Deployment): Availability => {
      const untilMs = cooling[deployment.key];
      return untilMs === undefined
        ? { isAvailable: true, isProbe: false }
        : { isAvailable: false, untilMs, cause: "rate_limited", reason: "429" };
    },
    ...extra,
  };
}

const request = { model: "m", fallbackModels: [], kind: "chat" } as const;
const keys = (deployments: readonly { deployment: Deployment }[]) => deployments.map((entry) => entry.deployment.key);

describe("routing.paid in the planner", () => {
  it("last_resort: the free candidate first whatever the scores; allowed: by score", () => {
    assert.equal(catalog.deployments[0]?.cost, "paid");
    assert.equal(catalog.deployments[1]?.cost, "free");
    assert.deepEqual(keys(planRoute(request, context("last_resort")).candidates), ["free/m", "paid/m"]);
    assert.deepEqual(keys(planRoute(request, context("allowed")).candidates), ["paid/m", "free/m"]);
  });

  it("last_resort: a free candidate cooling briefly is waited for instead of paying", () => {
    const plan = planRoute(request, context("last_resort", { "free/m": NOW_MS + 1_000 }));
    assert.deepEqual(keys(plan.candidates), ["paid/m"]);
    assert.equal(plan.waitFor?.deployment.key, "free/m");
  });

  it("never: paid is skipped with cause `paid`, never a candidate nor waited for", () => {
    const plan = planRoute(request, context("never", { "free/m": NOW_MS + 1_000 }));
    assert.deepEqual(keys(plan.candidates), []);
    assert.equal(plan.waitFor?.deployment.key, "free/m");
    assert.deepEqual(
      plan.skipped.map((skip) => [skip.deployment.key, skip.cause]),
      [
        ["paid/m", "paid"],
        ["free/m", "cooldown"],
      ],
    );
  });

  it("never with only paid models: 400 no_capable_model", () => {
    assert.throws(
      () => planRoute({ ...request, model: "paid/m" }, context("never")),
      (error: Error & { code?: string }) => error.code === "no_capable_model",
    );
  });

  it("a pooled cooldown or budget is labelled with its pool", () => {
    const plan = planRoute(
      request,
      context(
        "allowed",
        { "paid/m": NOW_MS + 5_000 },
        {
          coolingPool: (deployment) => (deployment.provider.settings.name === "paid" ? "provider:paid" : undefined),
          budgetCheck: (deployment) =>
            deployment.key === "free/m"
              ? { reason: "rpm 1 used", untilMs: NOW_MS + 60_000, pool: "provider:free" }
              : undefined,
        },
      ),
    );
    assert.deepEqual(
      plan.skipped.map((skip) => [skip.deployment.key, skip.cause, skip.pool, skip.reason]),
      [
        ["paid/m", "cooldown", "provider:paid", "pool provider:paid empty: 429"],
        ["free/m", "budget", "provider:free", "pool provider:free empty: rpm 1 used"],
      ],
    );
  });
});
