import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { countTextTokens } from "../limits/token-estimate.ts";
import { estimatedUsageChunk, OutputTokenCount } from "./estimated-usage.ts";

describe("OutputTokenCount", () => {
  test("counts every choice's text, reasoning, refusal and tool calls; not roles, ids or usage", () => {
    const count = new OutputTokenCount(countTextTokens);
    count.note({
      choices: [
        { index: 0, delta: { role: "assistant", content: "Hello there" } },
        { index: 1, delta: { reasoning_content: "think first" } },
      ],
      usage: null,
    });
    count.note({ choices: [{ index: 0, delta: { refusal: "I cannot" } }] });
    count.note({
      choices: [
        {
          index: 0,
          delta: {
            tool_calls: [{ index: 0, id: "call_abc", type: "function", function: { name: "f", arguments: "{}" } }],
          },
        },
      ],
    });
    count.note({ choices: [{ index: 0, delta: { function_call: { name: "g", arguments: '{"a":1}' } } }] });
    count.note({ choices: [{ index: 0, text: "completion text" }] });
    count.note({ choices: [], usage: { prompt_tokens: 5 } });
    const expected = ["Hello there", "think first", "I cannot", "f", "{}", "g", '{"a":1}', "completion text"].reduce(
      (sum, text) => sum + countTextTokens(text),
      0,
    );
    assert.equal(count.tokens, expected);
  });

  test("hostile shapes count nothing and do not throw", () => {
    const count = new OutputTokenCount(countTextTokens);
    for (const choices of [
      null,
      "x",
      [null, 1, "s", { delta: null }, { delta: { content: 5, tool_calls: [null, {}] } }],
    ]) {
      count.note({ choices });
    }
    assert.equal(count.tokens, 0);
  });
});

test("estimatedUsageChunk: OpenAI's usage chunk, the stream's id, created and model, and the marker", () => {
  const chunk = estimatedUsageChunk({ id: "other", created: 42, model: "m" }, "chatcmpl-1", {
    promptTokens: 10,
    completionTokens: 3,
  });
  assert.deepEqual(chunk, {
    id: "chatcmpl-1",
    object: "chat.completion.chunk",
    created: 42,
    model: "m",
    choices: [],
    usage: { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 },
    x_gateway: { usage_estimated: true },
  });
});
