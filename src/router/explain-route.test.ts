// The route explanation's score terms add up to the score each candidate was ranked with, a recovery probe's
// included (ranked with its failures ignored): real planner, real live scores, a manual clock; no server.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TEST_ROUTING } from "../../test/fixtures/routing-settings.ts";
import { ManualClock } from "../clock.ts";
import { providerSettingsSchema } from "../config/schema.ts";
import { scoringSchema } from "../config/scoring-schema.ts";
import type { RoutingSettings } from "../config/types.ts";
import type { Availability } from "../limits/availability.ts";
import { buildCatalog, type Deployment } from "../providers/catalog.ts";
import { LiveScores, type ScoringSnapshot } from "../scoring/live-scores.ts";
import { DEFAULT_SCORING_WEIGHTS, precomputeStaticScore } from "../scoring/score.ts";
import { type ExplainedCandidate, explainRoute, type RouteExplainSource } from "./explain-route.ts";
import { planRoute } from "./plan-route.ts";

const ROUTING: RoutingSettings = { ...TEST_ROUTING, maxWaitForBetterMs: 0 };

const catalog = buildCatalog(
  [
    providerSettingsSchema.parse({
      name: "alpha",
      base_url: "https://alpha.example/v1",
      api_key: "k",
      models: { m: { priority: 3 } },
    }),
    providerSettingsSchema.parse({
      name: "beta",
      base_url: "https://beta.example/v1",
      api_key: "k",
      models: { m: { priority: 1 } },
    }),
  ],
  new Map(),
);

const AVAILABLE: Availability = { isAvailable: true, isProbe: false };
const PROBE: Availability = { isAvailable: true, isProbe: true };

/** alpha: 2 slow answers then 2 failures (failure rate 0.5, latest evidence a failure); beta: 3 slow answers. */
function scene() {
  const clock = new ManualClock();
  const scores = new LiveScores(clock, undefined);
  const weights = DEFAULT_SCORING_WEIGHTS;
  const snapshot: ScoringSnapshot = {
    staticScores: catalog.deployments.map((deployment) =>
      precomputeStaticScore(
        {
          basePriority: deployment.provider.settings.name === "alpha" ? 1.2 : 1,
          priority: deployment.model.priority,
          leaderboard: 0.6,
          paramsB: 70,
          contextTokens: 128_000,
          adjustment: 0,
        },
        weights,
      ),
    ),
    profiles: [],
    scoring: { ...scoringSchema.parse({}), adjustmentsPath: "" },
  };
  const [alpha, beta] = catalog.deployments;
  assert.ok(alpha !== undefined && beta !== undefined);
  scores.recordHealth(alpha.key, true, 4_000);
  scores.recordHealth(alpha.key, true, 4_000);
  scores.recordHealth(alpha.key, false, 0);
  scores.recordHealth(alpha.key, false, 0);
  for (let index = 0; index < 3; index++) scores.recordHealth(beta.key, true, 8_000);
  const source = (isAlphaProbe: boolean): RouteExplainSource => ({
    snapshot: { profiles: [], scoring: { weights }, config: { routing: { strategy: "best" } } },
    plan: (request) =>
      planRoute(request, {
        catalog,
        metaModels: {},
        routing: ROUTING,
        nowMs: clock.now(),
        score: (deployment: Deployment) => scores.scoreOf(deployment, snapshot),
        probeScore: (deployment: Deployment) => scores.scoreOf(deployment, snapshot, true),
        availability: (deployment: Deployment) => (isAlphaProbe && deployment === alpha ? PROBE : AVAILABLE),
      }),
    explainScore: (deployment, options) => scores.explain(deployment, snapshot, options?.isProbe === true),
  });
  return { source };
}

/** `base × (priority + leaderboard + params + context + adjustment) − health`, from the explained terms. */
function sumOfTerms(candidate: ExplainedCandidate): number {
  const terms = candidate.terms;
  assert.ok(terms !== null, `${candidate.provider} has no terms`);
  return (
    terms.base_priority *
      (terms.priority +
        terms.leaderboard.weighted +
        terms.params.weighted +
        terms.context.weighted +
        terms.adjustment.weighted) -
    terms.health_penalty.weighted
  );
}

/** Terms and score are rounded to 3 decimals each: a handful of thousandths of slack, far below any penalty. */
const ROUNDING_SLACK = 0.01;

describe("explainRoute: the terms add up to the ranking score", () => {
  it("every candidate, a recovery probe included: its health term is the one the ranking used, marked probe", () => {
    const { source } = scene();
    const plan = explainRoute(source(true), "m");
    assert.deepEqual(
      plan.candidates.map((candidate) => [candidate.provider, candidate.terms?.health_penalty.probe]),
      [
        ["alpha", true],
        ["beta", false],
      ],
      "the probe is ranked in its place, above beta",
    );
    for (const candidate of plan.candidates) {
      assert.ok(
        Math.abs(sumOfTerms(candidate) - candidate.score) < ROUNDING_SLACK,
        `${candidate.provider}: terms ${sumOfTerms(candidate)}, score ${candidate.score}`,
      );
    }
    const [probe, other] = plan.candidates;
    const penalty = probe?.terms?.health_penalty;
    // Only latency counts for the probe (4 s answers: a latency term above zero), its failures do not.
    assert.equal(penalty?.failure_rate, 0);
    assert.ok((penalty?.weighted ?? 0) > 0, "the latency part of the penalty stays");
    assert.match(penalty?.reason ?? "", /^recovery probe: .*\(failure rate 0\.5, penalty [\d.]+ outside a probe\)/);
    assert.equal(other?.terms?.health_penalty.reason, null);
    assert.ok((other?.terms?.health_penalty.weighted ?? 0) > 0, "beta's latency penalty is a real term too");
  });

  it("the same candidate when it is not a probe: its failures count, it ranks below beta, the terms still add up", () => {
    const { source } = scene();
    const plan = explainRoute(source(false), "m");
    assert.deepEqual(
      plan.candidates.map((candidate) => candidate.provider),
      ["beta", "alpha"],
    );
    for (const candidate of plan.candidates) {
      assert.equal(candidate.terms?.health_penalty.probe, false);
      assert.ok(Math.abs(sumOfTerms(candidate) - candidate.score) < ROUNDING_SLACK, candidate.provider);
    }
    const alpha = plan.candidates.find((candidate) => candidate.provider === "alpha");
    assert.equal(alpha?.terms?.health_penalty.failure_rate, 0.5);
    const probePlan = explainRoute(source(true), "m");
    const probe = probePlan.candidates.find((candidate) => candidate.provider === "alpha");
    assert.ok(
      (alpha?.terms?.health_penalty.weighted ?? 0) > (probe?.terms?.health_penalty.weighted ?? 0) + 1,
      "outside the probe the failures cost points",
    );
  });
});
