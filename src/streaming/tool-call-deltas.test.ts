import assert from "node:assert/strict";
import { test } from "node:test";
import { ToolCallDeltas } from "./tool-call-deltas.ts";

type Delta = { index?: number; id?: string; type?: string; function?: { name?: string; arguments?: string } };

/** Feeds one chunk per delta list; returns each chunk's indexes after numbering and whether it was changed. */
function numbered(chunks: Delta[][]): { indexes: (number | undefined)[][]; changed: boolean[] } {
  const indexer = new ToolCallDeltas();
  const indexes: (number | undefined)[][] = [];
  const changed: boolean[] = [];
  for (const calls of chunks) {
    const json = { choices: [{ index: 0, delta: { tool_calls: calls.map((call) => ({ ...call })) } }] };
    changed.push(indexer.normalize(json));
    indexes.push(json.choices[0]?.delta.tool_calls.map((call) => (call as Delta).index) ?? []);
  }
  return { indexes, changed };
}

test("an OpenAI stream (interleaved parallel calls) is left as it is", () => {
  const result = numbered([
    [{ index: 0, id: "a", type: "function", function: { name: "f", arguments: "" } }],
    [{ index: 1, id: "b", type: "function", function: { name: "g", arguments: "" } }],
    [{ index: 0, function: { arguments: "{}" } }],
    [{ index: 1, function: { arguments: "{}" } }],
  ]);
  assert.deepEqual(result.indexes, [[0], [1], [0], [1]]);
  assert.deepEqual(result.changed, [false, false, false, false]);
});

test("indexless calls (Gemini: each whole in its own chunk, or the id first and arguments after) are numbered", () => {
  assert.deepEqual(
    numbered([
      [{ id: "call_1", function: { name: "f", arguments: '{"x":1}' } }],
      [{ id: "call_2", function: { name: "f", arguments: '{"x":2}' } }],
    ]).indexes,
    [[0], [1]],
  );
  assert.deepEqual(
    numbered([
      [{ id: "call_1", function: { name: "f" } }],
      [{ function: { arguments: "{}" } }],
      [{ function: { name: "g", arguments: "{}" } }],
    ]).indexes,
    [[0], [0], [1]],
  );
});

test("a provider numbering every call 0: a new id is a new index, and its later deltas follow it", () => {
  const result = numbered([
    [{ index: 0, id: "a", type: "function", function: { name: "f", arguments: "{" } }],
    [{ index: 0, function: { arguments: "}" } }],
    [{ index: 0, id: "b", type: "function", function: { name: "g", arguments: "{" } }],
    [{ index: 0, function: { arguments: "}" } }],
  ]);
  assert.deepEqual(result.indexes, [[0], [0], [1], [1]]);
  assert.deepEqual(result.changed, [false, false, true, true]);
});

test("choices are numbered apart (n > 1); chunks without tool calls are not touched", () => {
  const indexer = new ToolCallDeltas();
  const chunk = {
    choices: [
      { index: 0, delta: { tool_calls: [{ id: "a", function: { name: "f" } }] } },
      { index: 1, delta: { tool_calls: [{ id: "b", function: { name: "f" } }] } },
    ],
  };
  assert.equal(indexer.normalize(chunk), true);
  assert.deepEqual(
    chunk.choices.map((choice) => (choice.delta.tool_calls[0] as Delta).index),
    [0, 0],
  );
  assert.equal(indexer.normalize({ choices: [{ index: 0, delta: { content: "hi" } }] }), false);
  assert.equal(indexer.normalize({ choices: "nonsense" }), false);
});

test("a call's first delta gets the `type` and the `arguments` string OpenAI's has; later deltas are left alone", () => {
  const indexer = new ToolCallDeltas();
  const first = { index: 0, id: "a", function: { name: "f" } };
  const later = { index: 0, function: { arguments: "{}" } };
  assert.equal(indexer.normalize({ choices: [{ index: 0, delta: { tool_calls: [first] } }] }), true);
  assert.deepEqual(first, { index: 0, id: "a", type: "function", function: { name: "f", arguments: "" } });
  assert.equal(indexer.normalize({ choices: [{ index: 0, delta: { tool_calls: [later] } }] }), false);
  assert.deepEqual(later, { index: 0, function: { arguments: "{}" } });
});

test("arguments sent as the object itself become its JSON string, in any delta", () => {
  const indexer = new ToolCallDeltas();
  const call = { index: 0, id: "a", type: "function", function: { name: "f", arguments: { city: "Paris" } } };
  assert.equal(indexer.normalize({ choices: [{ index: 0, delta: { tool_calls: [call] } }] }), true);
  assert.equal(call.function.arguments, '{"city":"Paris"}');
});

test("well-indexed calls that start out of order (index 1 before 0, in one chunk or two) keep their numbers", () => {
  const first = (index: number, id: string) => ({
    index,
    id,
    type: "function",
    function: { name: "f", arguments: "" },
  });
  const result = numbered([[first(1, "b")], [first(0, "a")], [{ index: 0, function: { arguments: "{}" } }]]);
  assert.deepEqual(result.indexes, [[1], [0], [0]]);
  assert.deepEqual(result.changed, [false, false, false]);
  assert.deepEqual(numbered([[first(1, "b"), first(0, "a")]]).indexes, [[1, 0]]);
});

test("a call that got no arguments by its choice's finish gets `{}` in the finishing chunk; one with arguments does not", () => {
  const deltas = new ToolCallDeltas();
  const opening = {
    choices: [
      {
        index: 0,
        delta: {
          tool_calls: [
            { index: 0, id: "a", type: "function", function: { name: "now" } },
            { index: 1, id: "b", type: "function", function: { name: "f", arguments: '{"x":1}' } },
            { index: 2, id: "c", type: "function", function: { name: "g", arguments: " " } },
          ],
        },
        finish_reason: null,
      },
    ],
  };
  deltas.normalize(opening);
  assert.equal(deltas.completeArguments(opening), false, "not finished yet");
  const finishing: { choices: { index: number; delta?: unknown; finish_reason: string }[] } = {
    choices: [{ index: 0, finish_reason: "tool_calls" }],
  };
  assert.equal(deltas.completeArguments(finishing), true);
  assert.deepEqual(finishing.choices[0]?.delta, {
    tool_calls: [
      { index: 0, function: { arguments: "{}" } },
      { index: 2, function: { arguments: "{}" } },
    ],
  });
  assert.equal(deltas.completeArguments({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }), false, "once");
  const cut = new ToolCallDeltas();
  cut.normalize({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: "a", function: { name: "f" } }] } }] });
  assert.equal(cut.completeArguments({ choices: [{ index: 0, delta: {}, finish_reason: "length" }] }), false);
});

/** The id of the chunk's first tool-call delta. */
function firstCallId(json: { choices: { delta: { tool_calls: unknown[] } }[] }): unknown {
  return (json.choices[0]?.delta.tool_calls[0] as { id?: unknown } | undefined)?.id;
}

test("a call whose first delta has no id gets one made (once); later deltas and an upstream id are left alone", () => {
  let made = 0;
  const deltas = new ToolCallDeltas(() => `call_made${++made}`);
  const first = {
    choices: [
      { index: 0, delta: { tool_calls: [{ index: 0, type: "function", function: { name: "f", arguments: "" } }] } },
    ],
  };
  assert.equal(deltas.normalize(first), true);
  assert.equal(firstCallId(first), "call_made1");
  const next = { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: "{}" } }] } }] };
  assert.equal(deltas.normalize(next), false);
  assert.equal(firstCallId(next), undefined);
  const openAi = {
    choices: [
      {
        index: 0,
        delta: { tool_calls: [{ index: 1, id: "call_x", type: "function", function: { name: "g", arguments: "" } }] },
      },
    ],
  };
  assert.equal(deltas.normalize(openAi), false);
  assert.equal(made, 1);
});

test("every call at index 0 and no ids (vLLM, TGI, llama.cpp): a name after whole arguments is the next index", () => {
  const result = numbered([
    [{ index: 0, type: "function", function: { name: "get_weather", arguments: "" } }],
    [{ index: 0, function: { arguments: '{"city":' } }],
    [{ index: 0, function: { arguments: '"Paris"}' } }],
    [{ index: 0, type: "function", function: { name: "get_weather", arguments: '{"city":"Rome"}' } }],
    [{ index: 0, function: { arguments: " " } }],
  ]);
  assert.deepEqual(result.indexes, [[0], [0], [0], [1], [1]]);
  // Each call's first delta gets a made id (the upstream sent none): changed; the second call is renumbered too.
  assert.deepEqual(result.changed, [true, false, false, true, true]);
  // Two calls in one chunk, the first whole in it.
  assert.deepEqual(
    numbered([
      [
        { index: 0, function: { name: "f", arguments: "{}" } },
        { index: 0, function: { name: "g", arguments: "{}" } },
      ],
    ]).indexes,
    [[0, 1]],
  );
});

test("a provider repeating the name in every delta of one call (MiniMax on NVIDIA NIM) keeps one index", () => {
  const result = numbered([
    [{ index: 0, type: "function", function: { name: "read_file", arguments: "" } }],
    [{ index: 0, function: { name: "read_file", arguments: "" } }],
    [{ index: 0, function: { name: "read_file", arguments: '{"path":"a' } }],
    [{ index: 0, function: { name: "read_file", arguments: '.txt"}' } }],
  ]);
  assert.deepEqual(result.indexes, [[0], [0], [0], [0]]);
  // The first delta gets a made id; the others lose the repeated name.
  assert.deepEqual(result.changed, [true, true, true, true]);
});

/** Feeds one chunk per delta list; returns the deltas as the client gets them. */
function passedOn(chunks: Delta[][]): Delta[][] {
  const deltas = new ToolCallDeltas(() => "call_made");
  return chunks.map((calls) => {
    const json = {
      choices: [{ index: 0, delta: { tool_calls: calls.map((call) => structuredClone(call)) } }],
    };
    deltas.normalize(json);
    return json.choices[0]?.delta.tool_calls ?? [];
  });
}

test("a name repeated in a call's later deltas is passed on once, in its first (OpenAI's contract; hermes-agent appends names)", () => {
  assert.deepEqual(
    passedOn([
      [{ index: 0, id: "call_r", type: "function", function: { name: "read_file", arguments: "" } }],
      [{ index: 0, function: { name: "read_file", arguments: '{"path":' } }],
      [{ index: 0, id: "call_r", function: { name: "read_file", arguments: '"a.txt"}' } }],
      // Whole arguments, then the name again at index 0: the next call (of the same function), named in its first.
      [{ index: 0, function: { name: "read_file", arguments: '{"path":' } }],
      [{ index: 0, function: { name: "read_file", arguments: '"b.txt"}' } }],
    ]),
    [
      [{ index: 0, id: "call_r", type: "function", function: { name: "read_file", arguments: "" } }],
      [{ index: 0, function: { arguments: '{"path":' } }],
      [{ index: 0, function: { arguments: '"a.txt"}' } }],
      [{ index: 1, id: "call_made", type: "function", function: { name: "read_file", arguments: '{"path":' } }],
      [{ index: 1, function: { arguments: '"b.txt"}' } }],
    ],
  );
});

test("a continuation's name is kept when the call had none yet (id first, name later) or names another function", () => {
  assert.deepEqual(
    passedOn([
      [{ index: 0, id: "a", type: "function", function: { arguments: "" } }],
      [{ index: 0, function: { name: "f", arguments: "{" } }],
      [{ index: 0, function: { name: "f", arguments: "}" } }],
      // The same id under another name is still the same call (ids decide): its name is not the one sent, so kept.
      [{ index: 0, id: "a", function: { name: "g", arguments: "" } }],
    ]),
    [
      [{ index: 0, id: "a", type: "function", function: { arguments: "" } }],
      [{ index: 0, function: { name: "f", arguments: "{" } }],
      [{ index: 0, function: { arguments: "}" } }],
      [{ index: 0, function: { name: "g", arguments: "" } }],
    ],
  );
});

test("an upstream id that comes after the one made for the call is taken out; a different id later is a new call", () => {
  let made = 0;
  const deltas = new ToolCallDeltas(() => `call_made${++made}`);
  const delta = (call: Record<string, unknown>) => ({ choices: [{ index: 0, delta: { tool_calls: [call] } }] });
  const first = delta({ index: 0, type: "function", function: { name: "f", arguments: "" } });
  deltas.normalize(first);
  assert.equal(firstCallId(first), "call_made1");
  const late = delta({ index: 0, id: "up_1", function: { arguments: '{"x":' } });
  assert.equal(deltas.normalize(late), true);
  assert.equal(firstCallId(late), undefined, "the client keeps the made id, from the call's first delta");
  const again = delta({ index: 0, id: "up_1", function: { arguments: "1}" } });
  deltas.normalize(again);
  assert.equal(firstCallId(again), undefined);
  assert.equal((again.choices[0]?.delta.tool_calls[0] as { index?: unknown } | undefined)?.index, 0);
  const other = delta({ index: 0, id: "up_2", type: "function", function: { name: "g", arguments: "{}" } });
  deltas.normalize(other);
  assert.equal(firstCallId(other), "up_2", "another call's own id is kept");
  assert.equal((other.choices[0]?.delta.tool_calls[0] as { index?: unknown } | undefined)?.index, 1);
  assert.equal(made, 1);
});

test("an id and type repeated in a call's later deltas are passed on once, in its first (a client appending ids got call_xcall_x)", () => {
  assert.deepEqual(
    passedOn([
      [{ index: 0, id: "call_x", type: "function", function: { name: "f", arguments: "" } }],
      [{ index: 0, id: "call_x", type: "function", function: { arguments: '{"a":' } }],
      [{ index: 0, id: "call_x", function: { name: "f", arguments: "1}" } }],
      // Another id at the same index is the next call: its own id and type stay.
      [{ index: 0, id: "call_y", type: "function", function: { name: "f", arguments: "{}" } }],
    ]),
    [
      [{ index: 0, id: "call_x", type: "function", function: { name: "f", arguments: "" } }],
      [{ index: 0, function: { arguments: '{"a":' } }],
      [{ index: 0, function: { arguments: "1}" } }],
      [{ index: 1, id: "call_y", type: "function", function: { name: "f", arguments: "{}" } }],
    ],
  );
});

test("what is left empty goes: function {}, a delta of its index alone, tool_calls [] (the upstream's or left so)", () => {
  const deltas = new ToolCallDeltas(() => "call_made");
  const chunk = (delta: Record<string, unknown>) => ({ choices: [{ index: 0, delta }] });
  const text = chunk({ content: "Hi", tool_calls: [] });
  assert.equal(deltas.normalize(text), true);
  assert.deepEqual(text.choices[0]?.delta, { content: "Hi" });
  const first = chunk({
    tool_calls: [{ index: 0, id: "a", type: "function", function: { name: "f", arguments: "" } }],
  });
  assert.equal(deltas.normalize(first), false);
  // A name-only continuation: with its name gone nothing is left of it.
  const nameOnly = chunk({ tool_calls: [{ index: 0, function: { name: "f" } }] });
  assert.equal(deltas.normalize(nameOnly), true);
  assert.deepEqual(nameOnly.choices[0]?.delta, {});
  const headOnly = chunk({ tool_calls: [{ index: 0, id: "a", type: "function", function: {} }] });
  assert.equal(deltas.normalize(headOnly), true);
  assert.deepEqual(headOnly.choices[0]?.delta, {});
  // An empty one beside a call with something to say: only the empty one goes.
  const mixed = chunk({
    tool_calls: [
      { index: 0, id: "a", function: { name: "f" } },
      { index: 1, id: "b", type: "function", function: { name: "g", arguments: "{}" } },
      { index: 0, function: { arguments: "{}" } },
    ],
  });
  assert.equal(deltas.normalize(mixed), true);
  assert.deepEqual(mixed.choices[0]?.delta, {
    tool_calls: [
      { index: 1, id: "b", type: "function", function: { name: "g", arguments: "{}" } },
      { index: 0, function: { arguments: "{}" } },
    ],
  });
  assert.equal(deltas.normalize(chunk({ content: "x", tool_calls: null })), false, "null is left");
});

test("a call a new one certainly ends (its index taken over, or no index) without arguments gets `{}` before it", () => {
  const deltas = new ToolCallDeltas();
  const json = (calls: Delta[]) => ({ choices: [{ index: 0, delta: { tool_calls: calls as unknown[] } }] });
  const sameIndex = [
    json([{ index: 0, id: "a", type: "function", function: { name: "now", arguments: "" } }]),
    json([{ index: 0, id: "b", type: "function", function: { name: "f", arguments: '{"x":1}' } }]),
  ];
  for (const chunk of sameIndex) deltas.normalize(chunk);
  assert.deepEqual(sameIndex[1]?.choices[0]?.delta.tool_calls, [
    { index: 0, function: { arguments: "{}" } },
    { index: 1, id: "b", type: "function", function: { name: "f", arguments: '{"x":1}' } },
  ]);
  const finishing = { choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }] };
  assert.equal(deltas.completeArguments(finishing), false, "the ended call has its `{}` already");

  const indexless = new ToolCallDeltas();
  const gemini = [json([{ id: "a", function: { name: "now" } }]), json([{ id: "b", function: { name: "later" } }])];
  for (const chunk of gemini) indexless.normalize(chunk);
  assert.deepEqual(gemini[1]?.choices[0]?.delta.tool_calls, [
    { index: 0, function: { arguments: "{}" } },
    { index: 1, id: "b", type: "function", function: { name: "later", arguments: "" } },
  ]);
});

test("a call at another upstream index does not end the one before (parallel calls may interleave)", () => {
  const result = numbered([
    [{ index: 0, id: "a", type: "function", function: { name: "f", arguments: "" } }],
    [{ index: 1, id: "b", type: "function", function: { name: "g", arguments: "" } }],
    [{ index: 0, function: { arguments: '{"x":1}' } }],
  ]);
  assert.deepEqual(result.indexes, [[0], [1], [0]]);
  assert.deepEqual(result.changed, [false, false, false]);
});

test("an indexless call after an indexed one does not end it: its index's later arguments are its own, no `{}` before them", () => {
  const deltas = new ToolCallDeltas(() => "call_made");
  const chunks = [
    [{ index: 0, id: "a", type: "function", function: { name: "f", arguments: "" } }],
    [{ id: "b", type: "function", function: { name: "g", arguments: "{}" } }],
    [{ index: 0, function: { arguments: '{"x":1}' } }],
  ];
  const argumentsByIndex = new Map<unknown, string>();
  for (const calls of chunks) {
    const json = { choices: [{ index: 0, delta: { tool_calls: calls as unknown[] } }] };
    deltas.normalize(json);
    for (const call of (json.choices[0]?.delta.tool_calls ?? []) as Delta[]) {
      argumentsByIndex.set(call.index, (argumentsByIndex.get(call.index) ?? "") + (call.function?.arguments ?? ""));
    }
  }
  // Before, the first call got `{}` when the indexless one began, then its own arguments: `{}{"x":1}`, no JSON.
  assert.deepEqual(Object.fromEntries(argumentsByIndex), { 0: '{"x":1}', 1: "{}" });
  const finishing = { choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }] };
  assert.equal(deltas.completeArguments(finishing), false, "both calls have their arguments");
});

test("a freeform custom call gets no function arguments: not when a call follows it at its index, nor at the finish", () => {
  const deltas = new ToolCallDeltas(() => "call_made");
  const first = {
    choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: "a", custom: { name: "patch", input: "" } }] } }],
  };
  deltas.normalize(first);
  assert.deepEqual(first.choices[0]?.delta.tool_calls, [
    { index: 0, id: "a", type: "custom", custom: { name: "patch", input: "" } },
  ]);
  // Every call at index 0 (vLLM): a new id there starts the next call, and the custom one before it is not ended with `{}`.
  const next = {
    choices: [
      {
        index: 0,
        delta: { tool_calls: [{ index: 0, id: "b", type: "function", function: { name: "f", arguments: "" } }] },
      },
    ],
  };
  deltas.normalize(next);
  assert.deepEqual(next.choices[0]?.delta.tool_calls, [
    { index: 1, id: "b", type: "function", function: { name: "f", arguments: "" } },
  ]);
  const finish = { choices: [{ index: 0, delta: {}, finish_reason: "tool_calls" }] };
  deltas.completeArguments(finish);
  // The function call without arguments gets its `{}`; the custom call nothing.
  assert.deepEqual(finish.choices[0]?.delta, { tool_calls: [{ index: 1, function: { arguments: "{}" } }] });
});
