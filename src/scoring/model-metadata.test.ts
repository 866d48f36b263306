import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { lookupModelMetadata, parseModelMetadata } from "./model-metadata.ts";

const table = parseModelMetadata(
  await readFile(new URL("../../data/model-metadata/model_prices_and_context_window.json", import.meta.url), "utf8"),
);

describe("lookupModelMetadata on the shipped LiteLLM table", () => {
  it("finds a model under its provider's prefix", () => {
    const entry = lookupModelMetadata(table, "llama-3.3-70b-versatile", { provider: "groq" });
    assert.equal(entry?.key, "groq/llama-3.3-70b-versatile");
    assert.equal(entry?.matchedBy, "provider");
    assert.equal(entry?.contextTokens, 128_000);
    assert.deepEqual(entry?.capabilities, { tools: true, vision: false, jsonSchema: false, reasoning: false });
  });

  it("strips Gemini's models/ prefix and maps provider names to LiteLLM's", () => {
    const entry = lookupModelMetadata(table, "models/gemini-2.5-flash", { provider: "google" });
    assert.equal(entry?.key, "gemini/gemini-2.5-flash");
    assert.equal(entry?.capabilities.vision, true);
    assert.ok((entry?.contextTokens ?? 0) >= 1_000_000);
  });

  it("finds Cloudflare ids with their @cf path", () => {
    const entry = lookupModelMetadata(table, "@cf/meta/llama-3.2-3b-instruct", { provider: "cloudflare" });
    assert.equal(entry?.key, "cloudflare/@cf/meta/llama-3.2-3b-instruct");
  });

  it("falls back to a bare id", () => {
    const entry = lookupModelMetadata(table, "openai/gpt-4o-mini", { provider: "github" });
    assert.equal(entry?.key, "gpt-4o-mini");
    assert.equal(entry?.matchedBy, "bare");
    assert.equal(entry?.capabilities.jsonSchema, true);
  });

  it("falls back to the cross-provider alias", () => {
    const entry = lookupModelMetadata(table, "meta/llama-3.1-405b-instruct", { provider: "nvidia" });
    assert.equal(entry?.matchedBy, "alias");
    assert.ok((entry?.contextTokens ?? 0) > 0);
  });

  it("says unknown for a model it does not list", () => {
    assert.equal(lookupModelMetadata(table, "acme/unheard-of-13b", { provider: "acme" }), undefined);
  });
});

describe("parseModelMetadata", () => {
  const small = parseModelMetadata(
    JSON.stringify({
      sample_spec: { max_input_tokens: "max input tokens" },
      "a/input-and-output": { max_input_tokens: 32_000, max_output_tokens: 4_000, max_tokens: 4_000 },
      "a/legacy-output": { max_output_tokens: 8_000, max_tokens: 8_000 },
      "a/legacy-only": { max_tokens: 16_000, mode: "chat" },
      "a/legacy-split": { max_input_tokens: 64_000, max_tokens: 8_192 },
      "a/one-window": { max_input_tokens: 131_072, max_output_tokens: 131_072, max_tokens: 131_072 },
      "a/input-only-legacy-same": { max_input_tokens: 32_000, max_tokens: 32_000 },
      "a/preferred-median": { max_input_tokens: 10 },
      "b/preferred-median": { max_input_tokens: 20 },
      "c/preferred-median": { max_input_tokens: 30 },
    }),
  );

  it("skips sample_spec", () => {
    assert.equal(small.byKey.has("sample_spec"), false);
  });

  it("uses max_tokens as the context only when no output limit is stated", () => {
    assert.equal(lookupModelMetadata(small, "a/input-and-output")?.contextTokens, 32_000);
    assert.equal(lookupModelMetadata(small, "a/legacy-output")?.contextTokens, undefined);
    assert.equal(lookupModelMetadata(small, "a/legacy-only")?.contextTokens, 16_000);
  });

  it("reads the output limit: max_output_tokens, else a legacy max_tokens that differs from the input limit", () => {
    // Gemini-like: the prompt has its own limit, the output another (docs/routing.md "Context fit").
    assert.equal(lookupModelMetadata(small, "a/input-and-output")?.maxOutputTokens, 4_000);
    assert.equal(lookupModelMetadata(small, "a/legacy-split")?.maxOutputTokens, 8_192);
    assert.equal(lookupModelMetadata(small, "a/legacy-split")?.contextTokens, 64_000);
    // One number, or the same one twice: one window shared by prompt and output.
    assert.equal(lookupModelMetadata(small, "a/legacy-only")?.maxOutputTokens, undefined);
    assert.equal(lookupModelMetadata(small, "a/one-window")?.maxOutputTokens, 131_072);
    assert.equal(lookupModelMetadata(small, "a/one-window")?.contextTokens, 131_072);
    assert.equal(lookupModelMetadata(small, "a/input-only-legacy-same")?.maxOutputTokens, undefined);
  });

  it("takes the provider's own alias entry, else the median context", () => {
    const own = lookupModelMetadata(small, "x/preferred-median-instruct", { provider: "c" });
    assert.equal(own?.matchedBy, "alias");
    assert.equal(own?.contextTokens, 30);
    assert.equal(lookupModelMetadata(small, "x/preferred-median-instruct", { provider: "z" })?.contextTokens, 20);
  });
});
