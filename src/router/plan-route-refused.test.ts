// A candidate that refused a feature of the request as not supported is ranked after every candidate that did not
// (of every requested name), kept as a last resort, and ranked normally for requests without that feature. Pure:
// the refusals are given per test, at a fixed `nowMs`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TEST_ROUTING } from "../../test/fixtures/routing-settings.ts";
import { providerSettingsSchema } from "../config/schema.ts";
import type { RoutingSettings } from "../config/types.ts";
import { RefusedFeatures } from "../limits/refused-features.ts";
import { buildCatalog, type Deployment } from "../providers/catalog.ts";
import { planRoute, type RouteRequest, type RouterContext } from "./plan-route.ts";

/** alpha (priority 10), beta (9), both free, and gamma (1, paid) serve `m`; alpha also serves `n`. */
const catalog = buildCatalog(
  [
    providerSettingsSchema.parse({
      name: "alpha",
      base_url: "https://alpha.example/v1",
      api_key: "k",
      cost: "free",
      models: { m: { priority: 10 }, n: { priority: 10 } },
    }),
    providerSettingsSchema.parse({
      name: "beta",
      base_url: "https://beta.example/v1",
      api_key: "k",
      cost: "free",
      models: { m: { priority: 9 } },
    }),
    providerSettingsSchema.parse({
      name: "gamma",
      base_url: "https://gamma.example/v1",
      api_key: "k",
      models: { m: { priority: 1 } },
      cost: "paid",
    }),
  ],
  new Map(),
);

const NOW_MS = 1_000_000;

function context(book: RefusedFeatures, options: { cooling?: string; routing?: Partial<RoutingSettings> } = {}) {
  const routerContext: RouterContext = {
    catalog,
    metaModels: {},
    routing: { ...TEST_ROUTING, ...options.routing },
    nowMs: NOW_MS,
    score: (deployment: Deployment) => deployment.model.priority,
    availability: (deployment) =>
      deployment.key === options.cooling
        ? { isAvailable: false, untilMs: NOW_MS + 500, cause: "rate_limited", reason: "429" }
        : { isAvailable: true, isProbe: false },
    refusedFeature: (deployment, features) => book.refusalOf(deployment.key, features, NOW_MS),
  };
  return routerContext;
}

function order(request: Partial<RouteRequest>, routerContext: RouterContext): string[] {
  const plan = planRoute({ model: "m", fallbackModels: [], kind: "chat", ...request }, routerContext);
  return plan.candidates.map((candidate) => candidate.deployment.key);
}

test("the candidate that refused tools comes last for a request with tools, in its place for one without", () => {
  const book = new RefusedFeatures(3_600_000);
  book.learn("alpha/m", "tools", "HTTP 400: does not support tools", NOW_MS - 1_000);
  const routerContext = context(book);
  assert.deepEqual(order({ features: ["temperature", "tools"] }, routerContext), ["beta/m", "gamma/m", "alpha/m"]);
  assert.deepEqual(order({ features: ["temperature"] }, routerContext), ["alpha/m", "beta/m", "gamma/m"]);
  assert.deepEqual(order({}, routerContext), ["alpha/m", "beta/m", "gamma/m"]);
  const plan = planRoute({ model: "m", fallbackModels: [], kind: "chat", features: ["tools"] }, routerContext);
  assert.equal(plan.candidates.at(-1)?.refusedFeature?.feature, "tools");
  assert.equal(plan.skipped.length, 0, "ranked last, not skipped");
});

test("after every requested name's candidates, and still tried when it is the only one", () => {
  const book = new RefusedFeatures(3_600_000);
  book.learn("alpha/n", "seed", "HTTP 400: Unrecognized request argument supplied: seed", NOW_MS);
  const routerContext = context(book);
  assert.deepEqual(order({ model: "n,m", features: ["seed"] }, routerContext), [
    "alpha/m",
    "beta/m",
    "gamma/m",
    "alpha/n",
  ]);
  assert.deepEqual(order({ model: "n", features: ["seed"] }, routerContext), ["alpha/n"]);
});

test("an ended lesson ranks the candidate in its place again", () => {
  const book = new RefusedFeatures(1_000);
  book.learn("alpha/m", "tools", "r", NOW_MS - 1_000);
  assert.deepEqual(order({ features: ["tools"] }, context(book)), ["alpha/m", "beta/m", "gamma/m"]);
});

test("with routing.paid last_resort a free candidate that refused still comes before the paid ones", () => {
  const book = new RefusedFeatures(3_600_000);
  book.learn("beta/m", "tools", "r", NOW_MS);
  book.learn("gamma/m", "tools", "r", NOW_MS);
  const routerContext = context(book, { routing: { paid: "last_resort" } });
  assert.deepEqual(order({ features: ["tools"] }, routerContext), ["alpha/m", "beta/m", "gamma/m"]);
  // Free ones first, each part in its own order: the paid gamma took tools, the free alpha refused them.
  book.learn("alpha/m", "tools", "r", NOW_MS);
  book.unlearn("beta/m", ["tools"]);
  book.unlearn("gamma/m", ["tools"]);
  assert.deepEqual(order({ features: ["tools"] }, routerContext), ["beta/m", "alpha/m", "gamma/m"]);
});

test("a cooling candidate is waited for when only candidates that refused are ready", () => {
  const book = new RefusedFeatures(3_600_000);
  book.learn("beta/m", "tools", "r", NOW_MS);
  book.learn("gamma/m", "tools", "r", NOW_MS);
  const plan = planRoute(
    { model: "m", fallbackModels: [], kind: "chat", features: ["tools"] },
    context(book, { cooling: "alpha/m" }),
  );
  assert.equal(plan.waitFor?.deployment.key, "alpha/m");
  const without = planRoute({ model: "m", fallbackModels: [], kind: "chat" }, context(book, { cooling: "alpha/m" }));
  assert.equal(without.waitFor, undefined, "beta scores 9 against alpha's 10 and refused nothing: no wait");
});
