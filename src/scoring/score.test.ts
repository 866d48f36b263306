import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  DEFAULT_SCORING_WEIGHTS,
  healthPenalty,
  normaliseContext,
  normaliseParams,
  precomputeStaticScore,
  type ScoreInput,
  scoreCandidate,
  scoreWithHealth,
} from "./score.ts";

const weights = DEFAULT_SCORING_WEIGHTS;

function close(actual: number | undefined, expected: number, message?: string): void {
  assert.ok(actual !== undefined && Math.abs(actual - expected) < 1e-9, message ?? `${actual} ≈ ${expected}`);
}

const base: ScoreInput = {
  basePriority: 1,
  priority: 0,
  leaderboard: 0.8,
  paramsB: 70,
  contextTokens: 131_072,
  adjustment: 0,
  health: { samples: 0 },
};

describe("normalisation", () => {
  it("puts parameters on a log scale from 1B to 1000B", () => {
    close(normaliseParams(1), 0);
    close(normaliseParams(1000), 1);
    close(normaliseParams(Math.sqrt(1000)), 0.5);
    close(normaliseParams(4000), 1);
    close(normaliseParams(0.5), 0);
    assert.ok(normaliseParams(70) > normaliseParams(8));
  });

  it("puts context on a log scale from 4k to 1M tokens", () => {
    close(normaliseContext(4096), 0);
    close(normaliseContext(2048), 0);
    close(normaliseContext(131_072), 0.625);
    close(normaliseContext(1_048_576), 1);
    close(normaliseContext(2_097_152), 1);
  });
});

describe("scoreCandidate", () => {
  it("adds weighted terms and multiplies by base priority", () => {
    const result = scoreCandidate({ ...base, basePriority: 2, priority: 1, adjustment: -0.5 }, weights);
    const inner = 1 + 10 * 0.8 + 3 * normaliseParams(70) + 2 * 0.625 - 0.5;
    close(result.total, 2 * inner);
    close(result.terms.leaderboard.weighted, 8);
    close(result.terms.context.normalised, 0.625);
    close(result.terms.context.weighted, 1.25);
    assert.equal(result.terms.priority, 1);
    assert.deepEqual(result.terms.adjustment, { value: -0.5, weighted: -0.5 });
    assert.equal(result.basePriority, 2);
  });

  it("scores unknown leaderboard, parameters and context as neutral, not zero", () => {
    const result = scoreCandidate({ ...base, leaderboard: undefined, paramsB: undefined, contextTokens: undefined });
    for (const term of [result.terms.leaderboard, result.terms.params, result.terms.context]) {
      assert.equal(term.isNeutral, true);
      assert.equal(term.normalised, 0.5);
    }
    close(result.total, 10 * 0.5 + 3 * 0.5 + 2 * 0.5);
    const zeroed = scoreCandidate({ ...base, leaderboard: 0, paramsB: 0.1, contextTokens: 1000 });
    assert.ok(result.total > zeroed.total);
  });

  it("does not let a 2M context outweigh a much better model", () => {
    const better = scoreCandidate({ ...base, leaderboard: 0.9, contextTokens: 128_000 });
    const longContext = scoreCandidate({ ...base, leaderboard: 0.5, contextTokens: 2_000_000 });
    assert.ok(better.total > longContext.total);
  });

  it("sinks non-chat models through their adjustment", () => {
    assert.ok(scoreCandidate({ ...base, adjustment: -100 }).total < 0);
  });
});

describe("health penalty", () => {
  it("spares cold candidates", () => {
    const cold = healthPenalty({ successEwma: 0, latencyEwmaMs: 60_000, samples: 2.9 }, weights);
    assert.deepEqual(cold, { weighted: 0, failureRate: undefined, latencyNormalised: undefined, isCold: true });
  });

  it("grows with failure rate and latency", () => {
    const healthy = healthPenalty({ successEwma: 1, latencyEwmaMs: 800, samples: 10 }, weights);
    const flaky = healthPenalty({ successEwma: 0.5, latencyEwmaMs: 800, samples: 10 }, weights);
    const slow = healthPenalty({ successEwma: 1, latencyEwmaMs: 30_000, samples: 10 }, weights);
    const dead = healthPenalty({ successEwma: 0, latencyEwmaMs: 60_000, samples: 10 }, weights);
    assert.equal(healthy.weighted, 0);
    close(flaky.weighted, 5);
    close(slow.weighted, 2);
    close(dead.weighted, 12);
    assert.equal(flaky.isCold, false);
    const midLatency = healthPenalty({ successEwma: 1, latencyEwmaMs: Math.sqrt(30) * 1000, samples: 10 }, weights);
    close(midLatency.latencyNormalised, 0.5);
  });

  it("lets a failing candidate drop below a healthy weaker one", () => {
    const strongButFailing = scoreCandidate({ ...base, leaderboard: 0.9, health: { successEwma: 0.2, samples: 5 } });
    const weakButHealthy = scoreCandidate({ ...base, leaderboard: 0.5, health: { successEwma: 1, samples: 5 } });
    assert.ok(weakButHealthy.total > strongButFailing.total);
  });
});

describe("scoreWithHealth (the per-request path)", () => {
  it("equals scoreCandidate on the same inputs", () => {
    const healths = [
      { samples: 0 },
      { successEwma: 0.7, samples: 3 },
      { successEwma: 0.95, latencyEwmaMs: 4_000, samples: 12.5 },
      { latencyEwmaMs: 500, samples: 4 },
    ];
    for (const health of healths) {
      const input = { ...base, basePriority: 1.5, priority: 2, health };
      close(
        scoreWithHealth(precomputeStaticScore(input, weights), health, weights),
        scoreCandidate(input, weights).total,
      );
    }
  });
});
