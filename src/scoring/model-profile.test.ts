import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { loadAdjustments } from "./adjustments.ts";
import { DEFAULT_BOARD_WEIGHTS, loadLeaderboards } from "./leaderboards.ts";
import { loadModelMetadata } from "./model-metadata.ts";
import { profileModel, type ScoringSources, staticScoreFor } from "./model-profile.ts";
import { DEFAULT_SCORING_WEIGHTS, scoreWithHealth } from "./score.ts";

const root = new URL("../../", import.meta.url);
const sources: ScoringSources = {
  leaderboards: loadLeaderboards(fileURLToPath(new URL("data/leaderboards", root))),
  metadata: await loadModelMetadata(
    fileURLToPath(new URL("data/model-metadata/model_prices_and_context_window.json", root)),
  ),
  adjustments: loadAdjustments(
    await readFile(new URL("config/model-adjustments.yaml", root), "utf8"),
    "model-adjustments.yaml",
  ),
  boardWeights: DEFAULT_BOARD_WEIGHTS,
};

describe("profileModel", () => {
  it("gathers every static input for a Groq model", () => {
    const profile = profileModel(sources, "groq", "llama-3.3-70b-versatile");
    assert.equal(profile.alias, "llama-3.3-70b");
    assert.equal(profile.kind, "chat");
    assert.deepEqual(profile.params, { valueB: 70, source: "bigcodebench" });
    assert.equal(profile.contextTokens, 128_000);
    assert.equal(profile.contextSource, "metadata");
    assert.equal(profile.metadataKey, "groq/llama-3.3-70b-versatile");
    assert.equal(profile.capabilities?.tools, true);
    assert.ok(profile.leaderboard.value !== undefined && profile.leaderboard.matches.length === 3);
    assert.deepEqual(profile.adjustment, { total: 0, matched: [] });
  });

  it("lets overrides win", () => {
    const profile = profileModel(sources, "groq", "llama-3.3-70b-versatile", {
      paramsB: 71,
      contextTokens: 32_768,
      leaderboardName: "Llama-3.1-8B-Instruct",
    });
    assert.deepEqual(profile.params, { valueB: 71, source: "config" });
    assert.equal(profile.contextTokens, 32_768);
    assert.equal(profile.contextSource, "override");
    assert.equal(profile.leaderboard.matches[0]?.row, "Llama-3.1-8B-Instruct");
  });

  it("takes the output limit with the context it belongs to", () => {
    // The table's Gemini entry: a 1M input limit and a separate output limit.
    const gemini = profileModel(sources, "gemini", "gemini-2.5-flash");
    assert.equal(gemini.contextTokens, 1_048_576);
    assert.equal(gemini.maxOutputTokens, 65_535);
    // A configured or discovered context is one window: the table's output limit belongs to the table's context.
    assert.equal(
      profileModel(sources, "gemini", "gemini-2.5-flash", { contextTokens: 32_768 }).maxOutputTokens,
      undefined,
    );
    // Unless the config states its own output limit too.
    const both = profileModel(sources, "gemini", "gemini-2.5-flash", { contextTokens: 32_768, maxOutputTokens: 8_192 });
    assert.equal(both.maxOutputTokens, 8_192);
  });

  it("keeps unknown models unknown", () => {
    const profile = profileModel(sources, "acme", "acme/house-model");
    assert.equal(profile.leaderboard.value, undefined);
    assert.equal(profile.params, undefined);
    assert.equal(profile.contextTokens, undefined);
    assert.equal(profile.contextSource, undefined);
  });

  it("ranks a strong chat model above a small one and a non-chat model below zero", () => {
    const score = (provider: string, id: string): number =>
      scoreWithHealth(
        staticScoreFor(profileModel(sources, provider, id), { basePriority: 1, priority: 0 }, DEFAULT_SCORING_WEIGHTS),
        { samples: 0 },
        DEFAULT_SCORING_WEIGHTS,
      );
    assert.ok(score("groq", "llama-3.3-70b-versatile") > score("groq", "llama-3.1-8b-instant"));
    assert.ok(score("openrouter", "deepseek/deepseek-r1:free") > score("cloudflare", "@cf/meta/llama-3.2-1b-instruct"));
    assert.ok(score("groq", "whisper-large-v3") < 0);
    assert.ok(score("groq", "meta-llama/llama-guard-4-12b") < 0);
  });
});
