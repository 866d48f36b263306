import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { countTextTokens } from "../limits/token-estimate.ts";
import { estimatedUsageChunk, OutputTokenCount, withEstimatedUsage } from "./estimated-usage.ts";

describe("OutputTokenCount", () => {
  test("isFirstTextLeft: all but the first choice's text and reasoning (a segment keeps those as text)", () => {
    const count = new OutputTokenCount(countTextTokens, { isFirstTextLeft: true });
    count.note({
      choices: [
        { index: 0, delta: { content: "kept", reasoning: "kept too", refusal: "No" } },
        { index: 1, delta: { content: "second", reasoning_content: "", reasoning: "its thought" } },
      ],
    });
    count.note({
      choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { name: "f", arguments: "{}" } }] } }],
    });
    count.note({ choices: [{ index: 0, text: "completion text" }] });
    const expected = ["No", "second", "its thought", "f", "{}"].reduce((sum, piece) => sum + countTextTokens(piece), 0);
    assert.equal(count.tokens, expected);
  });

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

  test("a JSON answer: each choice's message (content as a string or text parts, reasoning, tool calls)", () => {
    const count = new OutputTokenCount(countTextTokens);
    count.note({
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: "Hello there",
            reasoning: "think first",
            tool_calls: [{ id: "call_a", type: "function", function: { name: "f", arguments: '{"a":1}' } }],
          },
        },
        { index: 1, message: { role: "assistant", content: [{ type: "text", text: "in parts" }, { type: "x" }] } },
      ],
    });
    const expected = ["Hello there", "think first", "f", '{"a":1}', "in parts"].reduce(
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
      [{ message: { content: [null, 5, { text: ["nested"] }, { text: { text: "x" } }] } }],
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

test("estimatedUsageChunk: a legacy completions stream's usage chunk is a text_completion, as its chunks", () => {
  const count = new OutputTokenCount(countTextTokens);
  count.note({ id: "cmpl-1", object: "text_completion", created: 7, model: "m", choices: [{ index: 0, text: "Hi" }] });
  count.note({ choices: [] });
  const chunk = estimatedUsageChunk(count.lastChunk, "cmpl-1", { promptTokens: 2, completionTokens: count.tokens });
  assert.equal(chunk.object, "text_completion");
  assert.equal(chunk.created, 7, "the last chunk with choices, not the empty one");
  assert.equal(chunk.model, "m");
});

test("withEstimatedUsage: usage and the gateway's marker added (an upstream's x_gateway was taken off before)", () => {
  assert.deepEqual(withEstimatedUsage({ id: "a" }, { promptTokens: 4, completionTokens: 1 }), {
    id: "a",
    usage: { prompt_tokens: 4, completion_tokens: 1, total_tokens: 5 },
    x_gateway: { usage_estimated: true },
  });
});

test("OutputTokenCount counts nothing until asked (most upstreams report usage), and holds at most ~16K characters", () => {
  const counted: string[] = [];
  const count = new OutputTokenCount((text) => {
    counted.push(text);
    return countTextTokens(text);
  });
  count.note({ choices: [{ index: 0, delta: { content: "short" } }] });
  assert.deepEqual(counted, [], "nothing counted while the answer is short");
  const piece = "word ".repeat(1_000);
  for (let index = 0; index < 4; index += 1) count.note({ choices: [{ index: 0, delta: { content: piece } }] });
  assert.equal(counted.length, 5, "the held pieces were counted once they passed the bound");
  count.note({ choices: [{ index: 0, delta: { content: "tail" } }] });
  const expected = countTextTokens("short") + 4 * countTextTokens(piece) + countTextTokens("tail");
  assert.equal(count.tokens, expected, "each piece counted on its own, as it came");
  assert.equal(count.tokens, expected, "read twice, counted once");
});
