import assert from "node:assert/strict";
import { test } from "node:test";
import type { ToolCallDelta } from "./chat-completions.ts";
import { type StreamedCall, StreamedToolCalls } from "./streamed-tool-calls.ts";

interface Call extends StreamedCall {
  argumentsText: string;
}

/** The calls the deltas make, as [id, name, arguments]. */
function callsOf(deltas: Partial<ToolCallDelta>[]): (string | undefined)[][] {
  const calls = new StreamedToolCalls<Call>();
  for (const partial of deltas) {
    const delta: ToolCallDelta = { index: undefined, id: undefined, name: undefined, arguments: "", ...partial };
    const call = calls.callFor(delta, () => ({ id: undefined, name: undefined, argumentsText: "" }));
    call.argumentsText += delta.arguments;
  }
  return calls.all.map((call) => [call.id, call.name, call.argumentsText]);
}

test("two calls both at index 0 without ids: a name after whole arguments starts the second", () => {
  assert.deepEqual(
    callsOf([
      { index: 0, name: "get_weather", arguments: "" },
      { index: 0, arguments: '{"city":' },
      { index: 0, arguments: '"Paris"}' },
      { index: 0, name: "get_time", arguments: '{"tz":' },
      { index: 0, arguments: '"CET"}' },
    ]),
    [
      [undefined, "get_weather", '{"city":"Paris"}'],
      [undefined, "get_time", '{"tz":"CET"}'],
    ],
  );
});

test("a provider repeating the name in every delta of one call (MiniMax on NVIDIA NIM) makes one call", () => {
  assert.deepEqual(
    callsOf([
      { index: 0, name: "read_file", arguments: "" },
      { index: 0, name: "read_file", arguments: '{"path":' },
      { index: 0, name: "read_file", arguments: '"a.txt"' },
      { index: 0, name: "read_file", arguments: "}" },
    ]),
    [[undefined, "read_file", '{"path":"a.txt"}']],
  );
});

test("ids still decide when both have one: the same id with its name again is one call, a new id a new call", () => {
  assert.deepEqual(
    callsOf([
      { index: 0, id: "a", name: "f", arguments: "{}" },
      { index: 0, id: "a", name: "f", arguments: "" },
      { index: 0, id: "b", name: "f", arguments: "{" },
      { index: 0, arguments: "}" },
    ]),
    [
      ["a", "f", "{}"],
      ["b", "f", "{}"],
    ],
  );
});
