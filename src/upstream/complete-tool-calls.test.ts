import assert from "node:assert/strict";
import { test } from "node:test";
import { completeToolCalls } from "./complete-tool-calls.ts";

test("a call without type, with object arguments or with empty arguments or no id is completed; OpenAI's answer is left as it is", () => {
  const answer = {
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          tool_calls: [
            { id: "a", function: { name: "f", arguments: { city: "Paris" } } },
            { id: "b", type: "function", function: { name: "g" } },
            { id: "c", type: "function", function: { name: "now", arguments: "" } },
          ],
        },
      },
    ],
  };
  assert.equal(completeToolCalls(answer), true);
  assert.deepEqual(answer.choices[0]?.message.tool_calls, [
    { id: "a", type: "function", function: { name: "f", arguments: '{"city":"Paris"}' } },
    { id: "b", type: "function", function: { name: "g", arguments: "{}" } },
    { id: "c", type: "function", function: { name: "now", arguments: "{}" } },
  ]);
  const withoutId = {
    choices: [{ message: { tool_calls: [{ type: "function", function: { name: "f", arguments: "{}" } }] } }],
  };
  assert.equal(completeToolCalls(withoutId), true);
  const madeId = (withoutId.choices[0]?.message.tool_calls[0] as { id?: unknown } | undefined)?.id;
  assert.match(String(madeId), /^call_[0-9a-f]{24}$/);
  const openAi = {
    choices: [{ message: { tool_calls: [{ id: "a", type: "function", function: { name: "f", arguments: "{}" } }] } }],
  };
  assert.equal(completeToolCalls(openAi), false);
  assert.equal(completeToolCalls({ choices: [{ message: { content: "hi" } }] }), false);
  assert.equal(completeToolCalls({ choices: null }), false);
});

test("a freeform custom call is left a custom call: no function arguments, and `custom` its type when it has none", () => {
  const answer = {
    choices: [
      {
        message: {
          tool_calls: [
            { id: "a", type: "custom", custom: { name: "patch", input: "*** Begin Patch" } },
            { id: "b", custom: { name: "patch", input: "x" } },
          ],
        },
      },
    ],
  };
  completeToolCalls(answer);
  assert.deepEqual(answer.choices[0]?.message.tool_calls, [
    { id: "a", type: "custom", custom: { name: "patch", input: "*** Begin Patch" } },
    { id: "b", type: "custom", custom: { name: "patch", input: "x" } },
  ]);
});
