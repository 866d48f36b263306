// The final error's words: the 429 names the candidate that frees up first, whichever check found it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { providerSettingsSchema } from "../config/schema.ts";
import { buildCatalog } from "../providers/catalog.ts";
import type { RoutePlan } from "../router/plan-route.ts";
import { finalError } from "./final-error.ts";

const NOW_MS = Date.UTC(2026, 0, 1, 12);

const [alpha, beta] = buildCatalog(
  ["alpha", "beta"].map((name) =>
    providerSettingsSchema.parse({ name, base_url: `https://${name}.example/v1`, api_key: "k", models: { m: {} } }),
  ),
  new Map(),
).deployments;

describe("finalError", () => {
  it("a 429 names the candidate whose reset set retry-after: an attempt-time budget skip as well as a plan skip", () => {
    assert.ok(alpha !== undefined && beta !== undefined);
    // alpha cools for 300 s (the plan saw it); beta looked free, but its reserve found the shared budget full for 59 s.
    const plan: RoutePlan = {
      requested: "m",
      candidates: [],
      waitFor: undefined,
      skipped: [
        {
          deployment: alpha,
          cause: "cooldown",
          reason: "429",
          score: 1,
          untilMs: NOW_MS + 300_000,
          cooldownCause: "rate_limited",
          board: undefined,
        },
      ],
      unknownNames: [],
    };
    const skips = [
      { deploymentKey: beta.key, reason: "over its rpm budget (5/5)", untilMs: NOW_MS + 59_000, isLimit: true },
    ];
    const error = finalError(plan, [], skips, undefined, 300_000, NOW_MS);
    assert.equal(error.status, 429);
    assert.match(error.message, /available again in 59 s \(beta\/m at 2026-01-01T12:00:59\.000Z\)/);
  });
});
