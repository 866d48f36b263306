import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ManualClock } from "../clock.ts";
import { DEFAULT_BOARD_WEIGHTS, loadLeaderboards } from "./leaderboards.ts";
import { profileModel, type ScoringSources, staticScoreFor, withQualityPriors } from "./model-profile.ts";
import { estimateQuality, familyOf, type KnownModel, priorPopulation, releaseDateOf } from "./quality-prior.ts";
import { DEFAULT_SCORING_WEIGHTS } from "./score.ts";
import { LEADERBOARD_DIR } from "./scoring-sources.ts";

const NOW_MS = Date.UTC(2026, 0, 1);

function known(name: string, quality: number, paramsB: number | undefined, provider?: string): KnownModel {
  return { name, quality, paramsB, family: familyOf(name), ...(provider === undefined ? {} : { provider }) };
}

/** Three sizes, three families; 70B models score 0.6 ± 0.05, 8B ones 0.4 ± 0.05. */
const POPULATION: KnownModel[] = [
  known("llama-3.1-70b", 0.55, 70),
  known("qwen-2.5-72b", 0.6, 72),
  known("mixtral-8x7b", 0.65, 56),
  known("llama-3.1-8b", 0.35, 8),
  known("qwen-2.5-7b", 0.4, 7),
  known("gemma-2-9b", 0.45, 9),
  known("gemma-2-27b", 0.5, 27, "acme"),
];

describe("familyOf and releaseDateOf", () => {
  it("reads the lineage word and the date written in an id", () => {
    assert.equal(familyOf("meta-llama/Llama-3.3-70B-Instruct"), "llama");
    assert.equal(familyOf("qwen/qwen3-32b:free"), "qwen");
    assert.equal(familyOf("4o"), undefined);
    assert.equal(releaseDateOf("mistral-small-2503"), Date.UTC(2025, 2, 1));
    assert.equal(releaseDateOf("claude-3-5-sonnet-20240620"), Date.UTC(2024, 5, 1));
    assert.equal(releaseDateOf("gpt-4o-2024-08-06"), Date.UTC(2024, 7, 1));
    assert.equal(releaseDateOf("llama-3.3-70b"), undefined);
    assert.equal(releaseDateOf("model-128k"), undefined);
  });
});

describe("estimateQuality", () => {
  it("a sized model of an unknown family: the median of known models of its size", () => {
    const prior = estimateQuality({ provider: "x", modelId: "brandnew-70b", paramsB: 70 }, POPULATION, NOW_MS);
    assert.equal(prior?.value, 0.6 * 0.85);
    assert.equal(prior?.cap, 0.6);
    assert.deepEqual(prior?.basis, ["size 70B: median 0.6 of 3 known models within ×2", "−15 % for being unmeasured"]);
  });

  it("never above the median of known models of its size, however good its family and provider", () => {
    const population = [...POPULATION, known("star-1-400b", 0.85, 400), known("star-2-300b", 0.85, 300)];
    population.push(known("star-3-200b", 0.85, 200, "x"));
    const prior = estimateQuality({ provider: "x", modelId: "star-4-8b", paramsB: 8 }, population, NOW_MS);
    assert.ok(prior !== undefined);
    assert.equal(prior.value, 0.4, prior.basis.join("; "));
    assert.ok(prior.basis.some((phrase) => phrase.startsWith("family star: median 0.85")));
    assert.ok(prior.basis.some((phrase) => phrase.startsWith("provider x: median 0.85")));
    assert.equal(prior.basis.at(-1), "capped at the median of known models of its size (0.4)");
  });

  it("a weaker family pulls the estimate below its size's median", () => {
    const population = [...POPULATION, known("gemma-2-2b", 0.2, 2)];
    const prior = estimateQuality({ provider: "x", modelId: "gemma-9-70b", paramsB: 70 }, population, NOW_MS);
    // size median 0.6, gemma median 0.45 (3 known): mean 0.525, less 15 %.
    assert.equal(prior?.value, ((0.6 + 0.45) / 2) * 0.85);
  });

  it("its provider's other models count", () => {
    const prior = estimateQuality({ provider: "acme", modelId: "acme-secret", paramsB: undefined }, POPULATION, NOW_MS);
    assert.equal(prior?.value, 0.5 * 0.85);
    assert.deepEqual(prior?.basis, ["provider acme: median 0.5 of its 1 known models", "−15 % for being unmeasured"]);
  });

  it("an old release loses 10 % a year after 18 months, at most 30 %; the clock decides", () => {
    const target = { provider: "x", modelId: "brandnew-70b-2301", paramsB: 70 };
    // Released 2023-01; on 2026-01-01 that is 36 months: 18 months past the grace, 1.5 years -> 15 %.
    const prior = estimateQuality(target, POPULATION, new ManualClock(NOW_MS).now());
    assert.ok(prior !== undefined);
    const years = (NOW_MS - Date.UTC(2023, 0, 1) - 548 * 86_400_000) / (365.25 * 86_400_000);
    assert.ok(Math.abs(prior.value - 0.6 * 0.85 * (1 - 0.1 * years)) < 1e-9);
    assert.match(prior.basis.at(-1) ?? "", /^released 2023-01: −15 % for age$/);
    const young = estimateQuality(target, POPULATION, Date.UTC(2024, 0, 1));
    assert.equal(young?.value, 0.6 * 0.85);
    const ancient = estimateQuality(target, POPULATION, Date.UTC(2040, 0, 1));
    assert.equal(ancient?.value, 0.6 * 0.85 * 0.7);
  });

  it("nothing known about it: the median of all known models, and nothing measured at all: no prior", () => {
    const prior = estimateQuality({ provider: "x", modelId: "mystery", paramsB: undefined }, POPULATION, NOW_MS);
    assert.equal(prior?.value, 0.5 * 0.85);
    assert.deepEqual(prior?.basis, ["median 0.5 of all 7 known models", "−15 % for being unmeasured"]);
    assert.equal(estimateQuality({ provider: "x", modelId: "mystery", paramsB: 7 }, [], NOW_MS), undefined);
  });
});

describe("priors against the shipped leaderboards", () => {
  it("an unmeasured name ranks below qwen-2.5-coder-32b (the issue's example), its term marked estimated", async () => {
    const leaderboards = loadLeaderboards(LEADERBOARD_DIR);
    const sources: ScoringSources = {
      leaderboards,
      metadata: undefined,
      adjustments: [],
      boardWeights: DEFAULT_BOARD_WEIGHTS,
    };
    const profiles = withQualityPriors(
      [
        profileModel(sources, "p", "qwen/qwen-2.5-coder-32b-instruct"),
        profileModel(sources, "p", "nobody-measured-this-32b"),
      ],
      sources,
      NOW_MS,
    );
    const [knownProfile, unknownProfile] = profiles;
    assert.ok(knownProfile?.leaderboard.value !== undefined && knownProfile.prior === undefined);
    assert.ok(unknownProfile?.prior !== undefined);
    const population = priorPopulation(leaderboards, DEFAULT_BOARD_WEIGHTS, []);
    const sizeMedian = estimateQuality({ provider: "q", modelId: "z", paramsB: 32 }, population, NOW_MS)?.cap;
    assert.ok(unknownProfile.prior.value <= (sizeMedian ?? 0) + 1e-9);
    const priorities = { basePriority: 1, priority: 0 };
    const knownScore = staticScoreFor(knownProfile, priorities, DEFAULT_SCORING_WEIGHTS);
    const unknownScore = staticScoreFor(unknownProfile, priorities, DEFAULT_SCORING_WEIGHTS);
    assert.equal(unknownScore.leaderboard.isEstimated, true);
    assert.equal(unknownScore.leaderboard.isNeutral, false);
    assert.equal(knownScore.leaderboard.isEstimated, undefined);
    assert.ok(
      unknownScore.leaderboard.weighted < knownScore.leaderboard.weighted,
      `${unknownScore.leaderboard.weighted} vs ${knownScore.leaderboard.weighted}`,
    );
  });
});
