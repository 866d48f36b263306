import assert from "node:assert/strict";
import { test } from "node:test";
import { reasoningOf } from "./chat-reasoning.ts";

test("reasoning_content when it holds text, else reasoning; an empty field is no reasoning", () => {
  assert.equal(reasoningOf({ reasoning_content: "a" }), "a");
  assert.equal(reasoningOf({ reasoning: "b" }), "b");
  assert.equal(reasoningOf({ reasoning_content: "a", reasoning: "b" }), "a");
  assert.equal(reasoningOf({ reasoning_content: "", reasoning: "b" }), "b", "the empty field is skipped, not read");
  assert.equal(reasoningOf({ reasoning_content: null, reasoning: "b" }), "b");
  assert.equal(reasoningOf({ reasoning: { effort: "low" } }), "", "not text");
  assert.equal(reasoningOf({}), "");
});
