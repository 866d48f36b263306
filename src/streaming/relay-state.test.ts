import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { RelayState } from "./relay-state.ts";
import { UsageMerge } from "./usage-merge.ts";

function state(maxRetainedChars: number): RelayState {
  return new RelayState({
    maxMalformedEvents: 3,
    isContinuable: true,
    maxRetainedChars,
    usage: new UsageMerge(undefined, undefined),
    redact: (text) => text.replaceAll("sk-secret", "[redacted]"),
  });
}

describe("RelayState retained text (upstream_limits.max_retained_stream_chars)", () => {
  test("under the cap every delivered character is kept and the answer may be continued", () => {
    const relay = state(100);
    for (let index = 0; index < 10; index++) relay.deliver("0123456789");
    assert.equal(relay.deliveredText().length, 100);
    assert.equal(relay.isContinuable, true);
    assert.equal(relay.isRetainingText, true);
  });

  test("past the cap nothing is kept, however much follows, and the answer is no longer continued", () => {
    const relay = state(100);
    for (let index = 0; index < 100_000; index++) relay.deliver("0123456789");
    assert.equal(relay.deliveredText(), "");
    assert.equal(relay.deliveredChars, 1_000_000, "what was delivered is still counted");
    assert.equal(relay.isContinuable, false);
    assert.equal(relay.isRetainingText, false);
  });

  test("redact is the relay's one redaction for upstream-derived text", () => {
    assert.equal(state(10).redact("key sk-secret"), "key [redacted]");
  });
});

describe("the closing chunk of a chat stream that ended with [DONE] without finish_reason", () => {
  const chunk = (choices: unknown[]) => ({
    id: "c-2",
    object: "chat.completion.chunk",
    created: 7,
    model: "m",
    choices,
  });

  test("n > 1: each unfinished choice gets its finish (tool_calls where it made one), a finished one none", () => {
    const relay = state(100);
    relay.choices.note(chunk([{ index: 0, delta: { role: "assistant", content: "a" }, finish_reason: null }]));
    relay.choices.note(chunk([{ index: 1, delta: { tool_calls: [{ index: 0, id: "t" }] }, finish_reason: null }]));
    relay.choices.note(chunk([{ index: 2, delta: { content: "c" }, finish_reason: "length" }]));
    assert.deepEqual(relay.choices.closingChunk("c-1"), {
      id: "c-1",
      object: "chat.completion.chunk",
      created: 7,
      model: "m",
      choices: [
        { index: 0, delta: {}, logprobs: null, finish_reason: "stop" },
        { index: 1, delta: {}, logprobs: null, finish_reason: "tool_calls" },
      ],
    });
  });

  test("none when every choice finished, for a usage-only stream, or for legacy completions (no delta)", () => {
    const finished = state(100);
    finished.choices.note(chunk([{ index: 0, delta: { content: "a" }, finish_reason: "stop" }]));
    assert.equal(finished.choices.closingChunk(undefined), undefined);
    const usageOnly = state(100);
    usageOnly.choices.note({ ...chunk([]), usage: { prompt_tokens: 1, completion_tokens: 0 } });
    assert.equal(usageOnly.choices.closingChunk(undefined), undefined);
    const legacy = state(100);
    legacy.choices.note({
      id: "cmpl",
      object: "text_completion",
      choices: [{ index: 0, text: "a", finish_reason: null }],
    });
    assert.equal(legacy.choices.closingChunk(undefined), undefined);
  });
});
