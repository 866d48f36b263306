import assert from "node:assert/strict";
import { test } from "node:test";
import { moderationApiFromId } from "../providers/moderation-api.ts";
import { HAZARD_CATEGORIES, moderationInputs, OPENAI_CATEGORIES, readLlamaGuardVerdict } from "./moderation-dialect.ts";

test("Llama Guard's verdicts: safe, unsafe with its codes (as written by the models and hosts seen)", () => {
  assert.deepEqual(readLlamaGuardVerdict("safe"), { ok: true, codes: [] });
  assert.deepEqual(readLlamaGuardVerdict("\n\nsafe\n"), { ok: true, codes: [] });
  assert.deepEqual(readLlamaGuardVerdict("unsafe\nS1,S10"), { ok: true, codes: ["S1", "S10"] });
  assert.deepEqual(readLlamaGuardVerdict("unsafe\nS14"), { ok: true, codes: ["S14"] });
  // One line, spaces after the commas, lower case, a code twice: the same verdict.
  assert.deepEqual(readLlamaGuardVerdict("unsafe s2, S2 ,S9"), { ok: true, codes: ["S2", "S9"] });
  // Cloudflare Workers AI's own form.
  assert.deepEqual(readLlamaGuardVerdict('{"safe":true,"categories":[]}'), { ok: true, codes: [] });
  assert.deepEqual(readLlamaGuardVerdict('{"safe":false,"categories":["S1","S12"]}'), {
    ok: true,
    codes: ["S1", "S12"],
  });
});

test("anything else is no verdict: the candidate failed", () => {
  for (const content of [
    "",
    "I cannot help with that.",
    "safety first",
    "safe\nS1",
    "unsafe",
    "unsafe\n",
    "unsafe\nS15",
    "unsafe\nS0",
    "unsafe\nO3",
    "unsafe\nviolence",
    "unsafely",
    '{"safe":false,"categories":[]}',
    '{"safe":false,"categories":["S99"]}',
    '{"safe":"no"}',
    "{not json",
    null,
    42,
    [{ type: "text", text: "safe" }],
  ]) {
    assert.equal(readLlamaGuardVerdict(content).ok, false, JSON.stringify(content));
  }
});

test("every hazard code maps to OpenAI's categories only", () => {
  assert.deepEqual(
    Object.keys(HAZARD_CATEGORIES),
    Array.from({ length: 14 }, (_, index) => `S${index + 1}`),
  );
  for (const categories of Object.values(HAZARD_CATEGORIES)) {
    for (const category of categories) assert.ok((OPENAI_CATEGORIES as readonly string[]).includes(category), category);
  }
});

test("inputs: a text is one, an array of texts one each, multimodal parts one with their kinds", () => {
  assert.deepEqual(moderationInputs("a"), [{ content: "a", types: ["text"] }]);
  assert.equal(moderationInputs(["a", "b", "c"]).length, 3);
  const parts = [
    { type: "image_url", image_url: { url: "data:," } },
    { type: "text", text: "x" },
  ];
  assert.deepEqual(moderationInputs(parts), [{ content: parts, types: ["text", "image"] }]);
  assert.deepEqual(moderationInputs([{ type: "image_url", image_url: { url: "data:," } }])[0]?.types, ["image"]);
});

test("which way a moderation model is called, from its id", () => {
  const cases: [string, string | undefined][] = [
    ["omni-moderation-latest", "native"],
    ["text-moderation-stable", "native"],
    ["mistral-moderation-latest", "native"],
    ["meta-llama/llama-guard-4-12b", "llama_guard"],
    ["@cf/meta/llama-guard-3-8b", "llama_guard"],
    ["meta-llama/Meta-Llama-Guard-3-8B", "llama_guard"],
    ["meta-llama/Llama-Guard-3-11B-Vision-Turbo", "llama_guard"],
    // Older taxonomies (Llama Guard 1's O1-O6, 2's S1-S11 numbered otherwise), and classifiers with other answers.
    ["meta-llama/LlamaGuard-2-8b", undefined],
    ["Meta-Llama/LlamaGuard-7b", undefined],
    ["meta-llama/llama-prompt-guard-2-86m", undefined],
    ["openai/gpt-oss-safeguard-20b", undefined],
    ["google/shieldgemma-2b", undefined],
    ["ibm-granite/granite-guardian-3.1-8b", undefined],
  ];
  for (const [id, api] of cases) assert.equal(moderationApiFromId(id), api, id);
});
