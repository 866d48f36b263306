import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseParamsB, resolveParamsB } from "./params.ts";

describe("parseParamsB", () => {
  const cases: ReadonlyArray<readonly [string, number | undefined]> = [
    ["llama-3.3-70b-versatile", 70],
    ["Meta-Llama-3.1-405B-Instruct", 405],
    ["llama3.1-8b", 8],
    ["qwen/qwen-2.5-coder-1.5b-instruct", 1.5],
    ["mixtral-8x7b-32768", 56],
    ["open-mixtral-8x22b", 176],
    // Mixture of experts: the total, not the active share.
    ["qwen/qwen3-30b-a3b", 30],
    ["qwen-3-235b-a22b-instruct-2507", 235],
    // The experts count (`16e`) means `17b` is the active size; the id has no total, so this is a lower bound.
    ["meta-llama/llama-4-scout-17b-16e-instruct", 17],
    ["deepseek-r1-distill-llama-70b", 70],
    ["HuggingFaceTB/SmolLM2-135M-Instruct", 0.135],
    ["models/gemma-3n-e2b-it", 2],
    ["gemma-3n-e4b-it:free", 4],
    ["@cf/meta/llama-3.2-11b-vision-instruct", 11],
    // Not sizes: versions, dates, context lengths, active-only markers.
    ["gpt-4o-2024-08-06", undefined],
    ["models/gemini-2.5-flash", undefined],
    ["phi-3-mini-128k-instruct", undefined],
    ["glm-4-9b-chat-1m", 9],
    ["deepseek-v3", undefined],
    ["o3-mini", undefined],
  ];
  for (const [id, expected] of cases) {
    it(`${id} -> ${expected ?? "unknown"}`, () => {
      assert.equal(parseParamsB(id), expected);
    });
  }
});

describe("resolveParamsB", () => {
  it("prefers config, then BigCodeBench, then the id", () => {
    assert.deepEqual(resolveParamsB({ modelId: "x-70b", configParamsB: 72, bigCodeBenchSizeB: 71 }), {
      valueB: 72,
      source: "config",
    });
    assert.deepEqual(resolveParamsB({ modelId: "x-70b", bigCodeBenchSizeB: 71 }), {
      valueB: 71,
      source: "bigcodebench",
    });
    assert.deepEqual(resolveParamsB({ modelId: "x-70b" }), { valueB: 70, source: "parsed" });
  });

  it("ignores non-positive or missing values and says unknown when nothing is known", () => {
    assert.deepEqual(resolveParamsB({ modelId: "x-70b", configParamsB: 0, bigCodeBenchSizeB: Number.NaN }), {
      valueB: 70,
      source: "parsed",
    });
    assert.equal(resolveParamsB({ modelId: "gpt-4o" }), undefined);
  });
});
