// A provider without a route for the request's endpoint (declared `served_paths`, or a route refusal learned) is left
// out of that endpoint's plans, with cause `endpoint`; other endpoints are planned as before. Pure: the lessons are
// given per test, at a fixed `nowMs`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TEST_ROUTING } from "../../test/fixtures/routing-settings.ts";
import { providerSettingsSchema } from "../config/schema.ts";
import { NoCapableModelError } from "../errors/gateway-error.ts";
import { RefusedFeatures } from "../limits/refused-features.ts";
import { learnUnservedEndpoint, unservedEndpointOf } from "../limits/unserved-endpoints.ts";
import { buildCatalog } from "../providers/catalog.ts";
import { planRoute, type RouteRequest, type RouterContext } from "./plan-route.ts";

/** alpha (priority 10) and beta (9) serve image model `flux`; beta declares it serves chat only. */
const catalog = buildCatalog(
  [
    providerSettingsSchema.parse({
      name: "alpha",
      base_url: "https://alpha.example/v1",
      api_key: "k",
      cost: "free",
      models: { flux: { priority: 10, kind: "image" } },
    }),
    providerSettingsSchema.parse({
      name: "beta",
      base_url: "https://beta.example/v1",
      api_key: "k",
      cost: "free",
      served_paths: ["/chat/completions"],
      models: { flux: { priority: 9, kind: "image" } },
    }),
    providerSettingsSchema.parse({
      name: "gamma",
      base_url: "https://gamma.example/v1",
      api_key: "k",
      cost: "free",
      models: { flux: { priority: 1, kind: "image" } },
    }),
  ],
  new Map(),
);

const NOW_MS = 1_000_000;
const DAY_MS = 86_400_000;

function context(book: RefusedFeatures): RouterContext {
  return {
    catalog,
    metaModels: {},
    routing: TEST_ROUTING,
    nowMs: NOW_MS,
    score: (deployment) => deployment.model.priority,
    availability: () => ({ isAvailable: true, isProbe: false }),
    unservedEndpoint: (deployment, path) => unservedEndpointOf(book, deployment.provider.settings.name, path, NOW_MS),
  };
}

const IMAGES: RouteRequest = { model: "flux", fallbackModels: [], kind: "image", endpointPath: "/images/generations" };

test("declared: a provider whose served_paths lack the endpoint is skipped from the first request", () => {
  const plan = planRoute(IMAGES, context(new RefusedFeatures(1)));
  assert.deepEqual(
    plan.candidates.map((candidate) => candidate.deployment.key),
    ["alpha/flux", "gamma/flux"],
  );
  const [skip] = plan.skipped;
  assert.equal(skip?.deployment.key, "beta/flux");
  assert.equal(skip?.cause, "endpoint");
  assert.match(
    skip?.reason ?? "",
    /beta does not serve \/images\/generations \(its served_paths: \/chat\/completions\)/,
  );
});

test("learned: skipped for that path until the lesson ends, another path of the provider untouched", () => {
  const book = new RefusedFeatures(1);
  learnUnservedEndpoint(book, "alpha", "/images/generations", "HTTP 404: Not Found", NOW_MS - 1, DAY_MS);
  const plan = planRoute(IMAGES, context(book));
  assert.deepEqual(
    plan.candidates.map((candidate) => candidate.deployment.key),
    ["gamma/flux"],
  );
  const alpha = plan.skipped.find((skip) => skip.deployment.key === "alpha/flux");
  assert.equal(alpha?.cause, "endpoint");
  assert.equal(alpha?.untilMs, NOW_MS - 1 + DAY_MS);
  assert.match(alpha?.reason ?? "", /alpha has no \/images\/generations route \(learned until .*HTTP 404: Not Found\)/);
  // The lifetime is the lesson's own, not the book's (1 ms for features here).
  assert.equal(
    unservedEndpointOf(book, "alpha", "/images/generations", NOW_MS + DAY_MS - 2)?.feature,
    "/images/generations",
  );
  assert.equal(unservedEndpointOf(book, "alpha", "/images/generations", NOW_MS + DAY_MS), undefined);
  // Another endpoint of alpha: planned as before.
  const edits = planRoute({ ...IMAGES, endpointPath: "/images/edits" }, context(book));
  assert.equal(edits.candidates[0]?.deployment.key, "alpha/flux");
  // No deployment-level lesson: nothing under alpha's deployment key.
  assert.equal(book.knows("alpha/flux"), false);
});

test("every provider without the route: no_capable_model naming them, no upstream request", () => {
  const book = new RefusedFeatures(1);
  learnUnservedEndpoint(book, "alpha", "/images/generations", "HTTP 405: Method Not Allowed", NOW_MS, DAY_MS);
  learnUnservedEndpoint(book, "gamma", "/images/generations", "HTTP 404: Not Found", NOW_MS, DAY_MS);
  assert.throws(
    () => planRoute(IMAGES, context(book)),
    (error: unknown) =>
      error instanceof NoCapableModelError && /No provider of `flux` serves \/images\/generations/.test(error.message),
  );
});
