import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ModelKind, modelKind, normaliseModelName } from "./model-names.ts";

describe("normaliseModelName", () => {
  // [upstream id (provider), alias]. The same examples are in docs/model-names.md.
  const cases: ReadonlyArray<readonly [string, string]> = [
    // One model on many providers gets one alias.
    ["meta-llama/Llama-3.3-70B-Instruct", "llama-3.3-70b"], // Hugging Face / DeepInfra
    ["llama-3.3-70b-versatile", "llama-3.3-70b"], // Groq
    ["meta-llama/llama-3.3-70b-instruct:free", "llama-3.3-70b"], // OpenRouter
    ["llama3.3-70b", "llama-3.3-70b"], // Cerebras (old id)
    ["llama-3.3-70b", "llama-3.3-70b"], // Cerebras
    ["@cf/meta/llama-3.3-70b-instruct-fp8-fast", "llama-3.3-70b"], // Cloudflare
    ["llama-3.1-8b-instant", "llama-3.1-8b"], // Groq
    ["llama3.1-8b", "llama-3.1-8b"], // Cerebras
    ["meta/llama-3.1-8b-instruct", "llama-3.1-8b"], // NVIDIA NIM
    ["accounts/fireworks/models/llama-v3p1-8b-instruct", "llama-3.1-8b"], // Fireworks
    ["llama3.1:8b", "llama-3.1-8b"], // Ollama tag
    ["Meta-Llama-3.1-405B-Instruct", "llama-3.1-405b"], // GitHub Models
    ["meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo", "llama-3.1-70b"], // Together
    ["qwen/qwen3-32b", "qwen-3-32b"], // Groq, OpenRouter
    ["qwen-3-32b", "qwen-3-32b"], // Cerebras
    ["Qwen/Qwen2.5-Coder-32B-Instruct", "qwen-2.5-coder-32b"],
    ["qwen/qwen-2.5-coder-32b-instruct:free", "qwen-2.5-coder-32b"],
    ["accounts/fireworks/models/qwen2p5-coder-32b-instruct", "qwen-2.5-coder-32b"],
    ["qwen-3-235b-a22b-instruct-2507", "qwen-3-235b-a22b-2507"],
    ["google/gemma-3-27b-it:free", "gemma-3-27b"],
    ["models/gemma-3-27b-it", "gemma-3-27b"], // Gemini API
    ["gemma2-9b-it", "gemma-2-9b"], // Groq
    ["models/gemini-2.5-flash", "gemini-2.5-flash"],
    ["openai/gpt-oss-120b", "gpt-oss-120b"], // Groq, GitHub Models
    ["gpt-oss-120b", "gpt-oss-120b"], // Cerebras
    ["moonshotai/kimi-k2-instruct", "kimi-k2"],
    ["claude-3-5-sonnet-20241022", "claude-3.5-sonnet-20241022"],
    ["anthropic/claude-3.5-sonnet:beta", "claude-3.5-sonnet"],
    ["mistral-medium-3-1-2508", "mistral-medium-3.1-2508"],
    ["open-mistral-nemo", "mistral-nemo"],
    ["open-mixtral-8x22b", "mixtral-8x22b"],
    ["mixtral-8x7b-32768", "mixtral-8x7b"],
    ["Cohere-command-r-plus-08-2024", "command-r-plus-08-2024"],
    ["zai-glm-4.6", "glm-4.6"],
    ["nvidia/Llama-3_3-Nemotron-Super-49B-v1_5", "llama-3.3-nemotron-super-49b-v1.5"],
    // Kept apart: these are other models, not other packagings.
    ["gpt-4o-mini", "gpt-4o-mini"],
    ["gpt-4-turbo", "gpt-4-turbo"],
    ["grok-4-fast", "grok-4-fast"],
    ["gpt-5.3-instant", "gpt-5.3-instant"],
    ["deepseek-chat", "deepseek-chat"],
    ["deepseek/deepseek-chat-v3-0324:free", "deepseek-chat-v3-0324"],
    ["mistral-large-latest", "mistral-large-latest"],
    ["o3-mini", "o3-mini"],
    ["deepseek-r1-distill-llama-70b", "deepseek-r1-distill-llama-70b"],
    ["llama-3.2-11b-vision-instruct", "llama-3.2-11b-vision"],
    ["gemma-3-1b-it", "gemma-3-1b"],
  ];
  for (const [upstreamId, alias] of cases) {
    it(`${upstreamId} -> ${alias}`, () => {
      assert.equal(normaliseModelName(upstreamId), alias);
    });
  }

  it("is idempotent", () => {
    for (const [upstreamId] of cases) {
      const alias = normaliseModelName(upstreamId);
      assert.equal(normaliseModelName(alias), alias, upstreamId);
    }
  });

  it("never merges different sizes or versions", () => {
    const distinct = [
      "llama-3.1-8b-instant",
      "llama-3.1-70b-versatile",
      "llama-3.3-70b",
      "llama-3-70b",
      "gpt-4o",
      "gpt-4o-mini",
    ];
    assert.equal(new Set(distinct.map(normaliseModelName)).size, distinct.length);
  });
});

describe("modelKind", () => {
  const cases: ReadonlyArray<readonly [string, ModelKind]> = [
    ["llama-3.3-70b-versatile", "chat"],
    ["llama-3.2-11b-vision-instruct", "chat"],
    ["gpt-4o-mini", "chat"],
    ["qwen/qwen-2.5-coder-32b-instruct:free", "chat"],
    ["text-embedding-3-small", "embedding"],
    ["models/gemini-embedding-001", "embedding"],
    ["nvidia/nv-embedqa-e5-v5", "embedding"],
    ["@cf/baai/bge-large-en-v1.5", "embedding"],
    ["nomic-embed-text", "embedding"],
    ["whisper-large-v3-turbo", "transcription"],
    ["distil-whisper-large-v3-en", "transcription"],
    ["playai-tts", "speech"],
    ["playai-tts-arabic", "speech"],
    ["gpt-4o-mini-tts", "speech"],
    ["tts-1-hd", "speech"],
    ["canopylabs/orpheus-v1-english", "speech"],
    ["gemini-2.5-flash-preview-tts", "speech"],
    ["speech-02-turbo", "speech"],
    // Together's text-to-speech models, whose ids carry no `tts`: they were chat models.
    ["hexgrad/Kokoro-82M", "speech"],
    ["cartesia/sonic-2", "speech"],
    // Audio chat, realtime and music models: no route serves them.
    ["gpt-4o-audio-preview", "audio"],
    ["gpt-4o-mini-audio-preview-2024-12-17", "audio"],
    ["gemini-2.5-flash-native-audio-preview-09-2025", "audio"],
    ["lyria-002", "audio"],
    // Realtime models answer only OpenAI's Realtime API: in chat routing, a chat request got the host's refusal.
    ["gpt-realtime", "audio"],
    ["gpt-4o-realtime-preview-2024-12-17", "audio"],
    ["gpt-realtime-mini", "audio"],
    ["gpt-4o-transcribe", "transcription"],
    // Rerankers: `rerank` anywhere, or a `rank` token (Together's LlamaRank).
    ["Salesforce/Llama-Rank-V1", "rerank"],
    ["BAAI/bge-reranker-v2-m3", "rerank"],
    ["rerank-2.5-lite", "rerank"],
    ["gpt-4o-mini-transcribe", "transcription"],
    ["dall-e-3", "image"],
    ["black-forest-labs/flux.1-schnell", "image"],
    ["@cf/stabilityai/stable-diffusion-xl-base-1.0", "image"],
    ["models/imagen-3.0-generate-002", "image"],
    ["gemini-2.5-flash-image", "image"],
    ["gpt-image-1", "image"],
    ["ideogram/ideogram-3.0", "image"],
    ["ByteDance-Seed/Seedream-3.0", "image"],
    ["HiDream-ai/HiDream-I1-Full", "image"],
    ["Qwen/Qwen-Image", "image"],
    ["Lykon/DreamShaper", "image"],
    // Image embedding models embed; the images route would send them a generation request.
    ["amazon.titan-embed-image-v1", "embedding"],
    ["cohere.embed-english-image-v3.0", "embedding"],
    // Video generation and OCR: no route serves them (the images route would send them requests they refuse).
    ["veo-3.0-generate-001", "video"],
    ["sora-2", "video"],
    ["mistral-ocr-latest", "ocr"],
    ["nvidia/llama-3.2-nv-rerankqa-1b-v2", "rerank"],
    ["bge-reranker-v2-m3", "rerank"],
    ["omni-moderation-latest", "moderation"],
    // Llama Guard takes chat messages but answers "safe"/"unsafe": not a chat model for routing.
    ["meta-llama/llama-guard-4-12b", "moderation"],
    ["@cf/meta/llama-guard-3-8b", "moderation"],
    ["meta-llama/llama-prompt-guard-2-86m", "moderation"],
    ["openai/gpt-oss-safeguard-20b", "moderation"],
  ];
  for (const [id, kind] of cases) {
    it(`${id} is ${kind}`, () => {
      assert.equal(modelKind(id), kind);
    });
  }
});

describe("normaliseModelName on hostile input", () => {
  it("stays linear on a long run of letters (the old `([a-z]{2,})(\\d)` backtracked quadratically)", () => {
    // Just under the length cap, so the regular expressions run: a quadratic one takes visible time at 20,000.
    const startedAt = performance.now();
    for (let round = 0; round < 200; round++) normaliseModelName(`${"a".repeat(250)}1`);
    assert.ok(performance.now() - startedAt < 200);
    assert.equal(normaliseModelName(`${"a".repeat(250)}1`), `${"a".repeat(250)}-1`);
  });

  it("gives a name over MAX_MODEL_NAME_CHARS back lower-cased, without work, at any length", () => {
    const name = `${"A".repeat(2_000_000)}1`;
    const startedAt = performance.now();
    assert.equal(normaliseModelName(name), name.toLowerCase());
    assert.ok(performance.now() - startedAt < 500);
  });
});
