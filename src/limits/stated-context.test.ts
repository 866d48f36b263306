import assert from "node:assert/strict";
import { test } from "node:test";
import { statedContextOf } from "./stated-context.ts";

test("the window and the prompt each provider's context refusal states", () => {
  const cases: [string, ReturnType<typeof statedContextOf>][] = [
    [
      "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
      { limitTokens: 8192, promptTokens: 9000 },
    ],
    [
      "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.",
      { limitTokens: 4096, promptTokens: 4000 },
    ],
    [
      "This model's maximum context length is 32768 tokens. However, your request has 40000 input tokens. Please reduce the length of the input messages.",
      { limitTokens: 32768, promptTokens: 40000 },
    ],
    [
      "This endpoint's maximum context length is 131,072 tokens. However, you requested about 150,000 tokens (149,000 of text input, 1,000 in the output).",
      { limitTokens: 131072, promptTokens: 149000 },
    ],
    ["prompt is too long: 208310 tokens > 200000 maximum", { limitTokens: 200000, promptTokens: 208310 }],
    [
      "Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum context length",
      { limitTokens: 32768, promptTokens: 40000 },
    ],
    [
      "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
      { limitTokens: 1048576, promptTokens: 1200000 },
    ],
    [
      "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8193. Given: 8000 `inputs` tokens and 500 `max_new_tokens`",
      { limitTokens: 8193, promptTokens: 8000 },
    ],
    [
      "Please reduce the length of the messages or completion. Current length is 9000 while limit is 8192",
      { limitTokens: 8192, promptTokens: 9000 },
    ],
    [
      "Please reduce the length of the messages or completion. This model's maximum context length is 8192 tokens.",
      { limitTokens: 8192 },
    ],
    [
      "This model's maximum context length is 4097 tokens. However, your messages resulted in 4392 tokens (4251 in the messages, 141 in the functions). Please reduce the length of the messages or functions.",
      { limitTokens: 4097, promptTokens: 4392 },
    ],
    [
      "This model's maximum context length is 8192 tokens. However, you requested 8420 tokens (7251 in the messages, 169 in the functions, and 1000 in the completion).",
      { limitTokens: 8192, promptTokens: 7420 },
    ],
    ["Please reduce the length of the messages.", undefined],
    ["maximum context length is 0 tokens", undefined],
  ];
  for (const [message, expected] of cases) assert.deepEqual(statedContextOf(message), expected, message);
});

test("a refusal of long runs of digits is read in linear time, its numbers past safe integers not read", () => {
  const started = performance.now();
  for (const run of ["1".repeat(8_200), "1,".repeat(4_100)]) {
    assert.deepEqual(statedContextOf(`maximum context length is 8192 tokens ${run}`), { limitTokens: 8192 });
  }
  // Quadratic, these took about 450 ms; linear, a few.
  assert.ok(performance.now() - started < 100, `${performance.now() - started} ms`);
  assert.equal(statedContextOf("maximum context length is 1e309 tokens"), undefined);
  assert.equal(statedContextOf("maximum context length is -5 tokens"), undefined);
  assert.deepEqual(statedContextOf(`maximum context length is 8192 tokens. ${"9".repeat(30)} in the messages`), {
    limitTokens: 8192,
  });
});
