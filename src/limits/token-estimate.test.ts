import assert from "node:assert/strict";
import { test } from "node:test";
import { threadCpuMs } from "../../test/helpers/thread-cpu.ts";
import { MAX_ESTIMATED_CHARS } from "../config/request-bounds.ts";
import { countTextTokens, estimateChatPrompt, estimateTextInput, estimateTextInputs } from "./token-estimate.ts";

/**
 * Reference counts from real BPE tokenizers (gpt-tokenizer 4.0.0: o200k_base, cl100k_base and GPT-2's r50k,
 * a small vocabulary like Llama 2 / Mistral 7B), recorded when the estimator replaced the tokenizer.
 */
const REFERENCE: readonly { name: string; text: string; o200k: number; cl100k: number; gpt2: number }[] = [
  {
    name: "prose",
    text: "The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst of times. Please summarise the following meeting notes and list the action items with owners and due dates.",
    o200k: 42,
    cl100k: 42,
    gpt2: 42,
  },
  {
    name: "code",
    text: 'export function planRoute(request: RouteRequest, context: RouterContext): RoutePlan {\n  const names = splitRequestedNames(request);\n  if (names.length === 0) {\n    throw new InvalidRequestError("`model` must name a model.", { param: "model" });\n  }\n}\n',
    o200k: 61,
    cl100k: 60,
    gpt2: 72,
  },
  {
    name: "json",
    text: '[{"type":"function","function":{"name":"get_weather","description":"Get the current weather in a given location","parameters":{"type":"object","properties":{"location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["location"]}}}]',
    o200k: 76,
    cl100k: 75,
    gpt2: 80,
  },
  {
    name: "numbers",
    text: "id,price,qty\n1042,19.99,3\n7781,249.00,12\n31337,0.05,1000\n",
    o200k: 34,
    cl100k: 34,
    gpt2: 34,
  },
  {
    name: "russian",
    text: "Съешь же ещё этих мягких французских булок, да выпей чаю. Москва — столица России.",
    o200k: 25,
    cl100k: 50,
    gpt2: 99,
  },
  {
    name: "chinese",
    text: "我们的网关把许多大语言模型提供商统一成一个兼容OpenAI的接口。请把下面的会议记录总结一下。",
    o200k: 30,
    cl100k: 44,
    gpt2: 91,
  },
  {
    name: "base64",
    text: "aGVsbG8gd29ybGQsIHRoaXMgaXMgYSBiYXNlNjQgc3RyaW5nIHdpdGggc29tZSByYW5kb20gYnl0ZXM6IL8x9K2Q/w==",
    o200k: 60,
    cl100k: 65,
    gpt2: 70,
  },
  {
    name: "hex",
    text: "3f9a2c7d1e8b4a6f0c5d2e9b8a7f6e5d4c3b2a19 e3b0c44298fc1c149afbf4c8996fb92427ae41e4",
    o200k: 63,
    cl100k: 63,
    gpt2: 64,
  },
];

/** Scripts whose text every modern tokenizer (o200k, cl100k, Llama 3, Gemini, Qwen) handles at least as well. */
const LATIN = new Set(["prose", "code", "json", "numbers", "base64", "hex"]);

test("the estimate never falls below o200k or cl100k, and for Latin script not below GPT-2's small vocabulary", () => {
  for (const sample of REFERENCE) {
    const estimate = countTextTokens(sample.text);
    const floor = Math.max(sample.o200k, sample.cl100k, LATIN.has(sample.name) ? sample.gpt2 : 0);
    assert.ok(estimate >= floor, `${sample.name}: estimate ${estimate} < ${floor}`);
  }
});

test("the estimate over-counts by a bounded margin (budgets must not refuse what fits)", () => {
  for (const sample of REFERENCE) {
    const estimate = countTextTokens(sample.text);
    assert.ok(estimate <= sample.o200k * 2.5, `${sample.name}: estimate ${estimate} > 2.5 × o200k ${sample.o200k}`);
  }
});

test("edge cases: empty, one word, digits one token each, emoji several", () => {
  assert.equal(countTextTokens(""), 0);
  assert.equal(countTextTokens("hello"), 2);
  assert.equal(countTextTokens("2026"), 4);
  assert.equal(countTextTokens("🎉"), 3);
  assert.ok(countTextTokens("模型") >= 2);
});

/**
 * Best of five runs, in ms of this thread's CPU: other processes on a shared machine are not counted, and the minimum
 * is the run least disturbed by cache and frequency effects.
 */
function bestTimeMs(run: () => void): number {
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 5; round++) best = Math.min(best, threadCpuMs(run).ms);
  return best;
}

test("linear time: 4× the text costs about 4× (a quadratic count costs 16×), in any script, no word break", () => {
  for (const unit of ["a", "aB", "7", "模", "{", " ", "é", "🎉"]) {
    const small = unit.repeat(Math.ceil(250_000 / unit.length));
    const large = unit.repeat(Math.ceil(1_000_000 / unit.length));
    const smallMs = bestTimeMs(() => countTextTokens(small));
    const largeMs = bestTimeMs(() => countTextTokens(large));
    // The BPE tokenizer never finished 1 MB of `a` (200 KB took 12.8 s); 1 s is a bound even a loaded runner keeps.
    // 4× the text: linear costs ~4×, quadratic 16×; 12× leaves room for a noisy, shared machine.
    assert.ok(largeMs < 1000, `${JSON.stringify(unit)} × 1 MB took ${largeMs.toFixed(0)} ms`);
    assert.ok(
      largeMs < Math.max(12 * smallMs, 200),
      `${JSON.stringify(unit)}: 1 MB took ${largeMs.toFixed(1)} ms, 250 KB ${smallMs.toFixed(1)} ms`,
    );
  }
});

test("past MAX_ESTIMATED_CHARS per request, every character counts one token (the cap only raises)", () => {
  const half = "a".repeat(MAX_ESTIMATED_CHARS / 2);
  const messages = [
    { role: "user", content: half },
    { role: "user", content: half },
    { role: "user", content: "bbbb" },
  ];
  const facts = estimateChatPrompt(messages, undefined);
  // The first two messages are read (4 letters per token); the third is past the cap: 4 characters, 4 tokens.
  assert.equal(facts.promptTokens, 3 + 3 * 4 + MAX_ESTIMATED_CHARS / 4 + 4);
  assert.equal(estimateTextInput(["aaaa", "aaaa"]), 2);
});

test("a prompt of token ids is one input of that many tokens; a list of token lists, one input each", () => {
  // Counted 0 before: a legacy completion of a prompt of token ids was planned and reserved as an empty prompt.
  assert.equal(estimateTextInput([11, 12, 13, 14, 15]), 5);
  assert.deepEqual(estimateTextInputs([11, 12, 13]), { total: 3, longest: 3 });
  assert.deepEqual(
    estimateTextInputs([
      [1, 2],
      [3, 4, 5],
    ]),
    { total: 5, longest: 3 },
  );
  assert.equal(estimateTextInput([]), 0);
});

const IMAGE_PART = { type: "image_url", image_url: { url: "https://example.com/a.jpg" } };

test("chat estimate: framing per message, images, tool calls and tools", () => {
  const facts = estimateChatPrompt(
    [
      {
        role: "user",
        content: [
          { type: "text", text: "hi" },
          { type: "image_url", image_url: { url: "x" } },
        ],
      },
      { role: "assistant", tool_calls: [{ id: "c1", function: { name: "f", arguments: "{}" } }] },
    ],
    [{ type: "function", function: { name: "f" } }],
  );
  assert.equal(facts.hasImages, true);
  assert.ok(facts.promptTokens > 3 + 2 * 4 + 1 + 765);
});

test("chat estimate: vLLM's untyped image part is an image; an untyped audio or video part is not", () => {
  const image = estimateChatPrompt(
    [{ role: "user", content: [{ image_url: "https://example.com/a.jpg" }] }],
    undefined,
  );
  assert.equal(image.hasImages, true);
  assert.equal(
    image.promptTokens,
    estimateChatPrompt([{ role: "user", content: [IMAGE_PART] }], undefined).promptTokens,
  );
  const others = estimateChatPrompt(
    [
      {
        role: "user",
        content: [{ audio_url: "https://example.com/a.mp3" }, { video_url: "https://example.com/a.mp4" }],
      },
    ],
    undefined,
  );
  assert.equal(others.hasImages, false);
});

test("chat estimate: reasoning sent back on an assistant message counts as prompt", () => {
  const reasoning = "word ".repeat(400);
  const withReasoning = estimateChatPrompt(
    [{ role: "assistant", content: "ok", reasoning_content: reasoning }],
    undefined,
  );
  const without = estimateChatPrompt([{ role: "assistant", content: "ok" }], undefined);
  assert.equal(withReasoning.promptTokens - without.promptTokens, countTextTokens(reasoning));
});

test("chat estimate: a document (file part) by its decoded size, a page per 100 KB at 3,000 tokens; by id one page", () => {
  const pdf = (bytes: number) => ({
    type: "file",
    file: { file_data: `data:application/pdf;base64,${Buffer.alloc(bytes, 7).toString("base64")}` },
  });
  const promptOf = (part: unknown) => estimateChatPrompt([{ role: "user", content: [part] }], undefined);
  const framing = 3 + 4;
  assert.equal(promptOf(pdf(600_000)).promptTokens, framing + 6 * 3_000);
  assert.equal(promptOf(pdf(600_001)).promptTokens, framing + 7 * 3_000);
  assert.equal(promptOf(pdf(2_000)).promptTokens, framing + 3_000, "a small PDF is still a page");
  assert.equal(promptOf({ type: "file", file: { file_id: "file-1" } }).promptTokens, framing + 3_000);
  assert.equal(promptOf(pdf(600_000)).hasDocuments, true);
  assert.equal(promptOf({ type: "text", text: "hi" }).hasDocuments, undefined);
});

test("chat estimate: a tool call's extra_content (Gemini's thought signature) is not counted", () => {
  const call = { id: "c1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } };
  const signed = { ...call, extra_content: { google: { thought_signature: "A".repeat(4_000) } } };
  const plain = estimateChatPrompt([{ role: "assistant", content: null, tool_calls: [call] }], undefined);
  const withSignature = estimateChatPrompt([{ role: "assistant", content: null, tool_calls: [signed] }], undefined);
  assert.equal(withSignature.promptTokens, plain.promptTokens);
});
