import assert from "node:assert/strict";
import { test } from "node:test";
import { limitAnswerToolCalls, StreamedToolCallLimit, toolCallLimitOf } from "./tool-call-limit.ts";

function chunk(toolCalls: unknown[]): unknown {
  return { choices: [{ index: 0, delta: { tool_calls: toolCalls }, finish_reason: null }] };
}

function keptCalls(limited: unknown): unknown {
  return (limited as { choices: { delta: { tool_calls?: unknown } }[] }).choices[0]?.delta.tool_calls;
}

test("the limit: 1 for parallel_tool_calls false, max_tool_calls, the smaller of both, none without either", () => {
  assert.equal(toolCallLimitOf({ parallel_tool_calls: false }), 1);
  assert.equal(toolCallLimitOf({ max_tool_calls: 3 }), 3);
  assert.equal(toolCallLimitOf({ parallel_tool_calls: false, max_tool_calls: 0 }), 0);
  assert.equal(toolCallLimitOf({ parallel_tool_calls: true, max_tool_calls: null }), undefined);
});

test("JSON: the first calls kept; no call left: no tool_calls; under the limit the answer itself", () => {
  const answer = {
    choices: [{ index: 0, message: { role: "assistant", content: null, tool_calls: [{ id: "a" }, { id: "b" }] } }],
  };
  const one = limitAnswerToolCalls(answer, 1) as typeof answer;
  assert.deepEqual(one.choices[0]?.message.tool_calls, [{ id: "a" }]);
  assert.equal("tool_calls" in ((limitAnswerToolCalls(answer, 0) as typeof answer).choices[0]?.message ?? {}), false);
  assert.equal(limitAnswerToolCalls(answer, 2), answer);
  assert.equal(answer.choices[0]?.message.tool_calls.length, 2);
});

test("streamed, indexless calls each whole in a chunk (Gemini): the second call's chunk loses its call", () => {
  const limit = new StreamedToolCallLimit(1);
  const first = chunk([{ id: "c1", function: { name: "f", arguments: '{"a":1}' } }]);
  assert.equal(limit.filter(first), first);
  assert.equal(
    keptCalls(limit.filter(chunk([{ id: "c2", function: { name: "f", arguments: '{"a":2}' } }]))),
    undefined,
  );
});

test("streamed, every call at index 0 without ids: a name after a whole call is the next call, dropped", () => {
  const limit = new StreamedToolCallLimit(1);
  const parts = [
    chunk([{ index: 0, function: { name: "f", arguments: '{"a":' } }]),
    chunk([{ index: 0, function: { arguments: "1}" } }]),
  ];
  for (const part of parts) assert.equal(limit.filter(part), part);
  assert.equal(keptCalls(limit.filter(chunk([{ index: 0, function: { name: "g", arguments: "{}" } }]))), undefined);
});

test("streamed, two calls in one chunk: the first kept, the chunk's other fields as they were", () => {
  const limit = new StreamedToolCallLimit(1);
  const both = chunk([
    { index: 0, id: "c1", function: { name: "f", arguments: "{}" } },
    { index: 1, id: "c2", function: { name: "g", arguments: "{}" } },
  ]);
  const limited = limit.filter(both) as { choices: { finish_reason: unknown }[] };
  assert.deepEqual(keptCalls(limited), [{ index: 0, id: "c1", function: { name: "f", arguments: "{}" } }]);
  assert.equal(limited.choices[0]?.finish_reason, null);
  assert.equal(keptCalls(limit.filter(chunk([{ index: 1, function: { arguments: "" } }]))), undefined);
});
