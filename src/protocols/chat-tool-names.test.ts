import assert from "node:assert/strict";
import { test } from "node:test";
import { clientNamedAnswer, restoreChunkToolNames, shortenChatToolNames } from "./chat-tool-names.ts";
import { upstreamToolName } from "./long-tool-names.ts";

const LONG = `mcp__server__${"x".repeat(60)}`;
const SHORT = upstreamToolName(LONG);
const fn = (name: string) => ({ type: "function", function: { name } });

test("a body without a long name is not copied; junk where tools or messages go is left to validation", () => {
  assert.equal(shortenChatToolNames({ model: "m", tools: [fn("f")], messages: [] }), undefined);
  assert.equal(shortenChatToolNames("nonsense"), undefined);
  assert.equal(shortenChatToolNames({ tools: "x", tool_choice: 3, messages: [null, { tool_calls: "y" }] }), undefined);
  const odd = shortenChatToolNames({ tools: [fn(LONG), "x", { function: { name: 7 } }], messages: "z" });
  assert.deepEqual(odd?.body, { tools: [fn(SHORT), "x", { function: { name: 7 } }], messages: "z" });
});

test("tools, a named or allowed_tools tool choice and the history's calls are shortened; the client's body is not changed", () => {
  const body = {
    model: "m",
    tools: [fn(LONG), fn("f")],
    tool_choice: { type: "allowed_tools", allowed_tools: { mode: "auto", tools: [fn(LONG), fn("f")] } },
    messages: [
      { role: "user", content: "hi" },
      { role: "assistant", content: null, tool_calls: [{ id: "c", ...fn(LONG) }] },
    ],
  };
  const copy = structuredClone(body);
  const shortened = shortenChatToolNames(body);
  assert.deepEqual(body, copy);
  assert.deepEqual(shortened?.body, {
    model: "m",
    tools: [fn(SHORT), fn("f")],
    tool_choice: { type: "allowed_tools", allowed_tools: { mode: "auto", tools: [fn(SHORT), fn("f")] } },
    messages: [
      { role: "user", content: "hi" },
      { role: "assistant", content: null, tool_calls: [{ id: "c", ...fn(SHORT) }] },
    ],
  });
  assert.deepEqual(shortenChatToolNames({ tool_choice: fn(LONG) })?.body, { tool_choice: fn(SHORT) });
});

test("answers and chunks get the client's names back; other names and bodies stay as they are", () => {
  const names = shortenChatToolNames({ tools: [fn(LONG)] })?.names;
  assert.ok(names !== undefined);
  const answer = JSON.stringify({ choices: [{ message: { tool_calls: [{ id: "c", ...fn(SHORT) }, fn("g")] } }] });
  assert.deepEqual(JSON.parse(clientNamedAnswer(answer, names)), {
    choices: [{ message: { tool_calls: [{ id: "c", ...fn(LONG) }, fn("g")] } }],
  });
  const text = JSON.stringify({ choices: [{ message: { content: "hi" } }] });
  assert.equal(clientNamedAnswer(text, names), text);
  assert.equal(clientNamedAnswer("not json", names), "not json");
  const chunk = { choices: [{ delta: { tool_calls: [{ index: 0, function: { name: SHORT, arguments: "" } }] } }] };
  assert.equal(restoreChunkToolNames(chunk, names), true);
  assert.equal(chunk.choices[0]?.delta.tool_calls[0]?.function.name, LONG);
  assert.equal(restoreChunkToolNames({ choices: [{ delta: { content: "x" } }] }, names), false);
});

test("a tool result's `name` (Mistral's tool messages carry the function's name) is shortened with its call", () => {
  const body = {
    tools: [fn(LONG)],
    messages: [
      { role: "assistant", content: null, tool_calls: [{ id: "c", ...fn(LONG) }] },
      { role: "tool", tool_call_id: "c", name: LONG, content: "ok" },
      { role: "tool", tool_call_id: "d", name: "f", content: "ok" },
    ],
  };
  const messages = (shortenChatToolNames(body)?.body.messages ?? []) as { name?: string }[];
  assert.equal(messages[1]?.name, SHORT);
  assert.equal(messages[2]?.name, "f");
  // Alone (the tools no longer offered), it is found too.
  const alone = shortenChatToolNames({ messages: [{ role: "tool", tool_call_id: "c", name: LONG, content: "ok" }] });
  assert.equal((alone?.body.messages as { name?: string }[] | undefined)?.[0]?.name, SHORT);
});

test("the deprecated functions / function_call and names with invalid characters are renamed; legacy calls map back", () => {
  const body = {
    functions: [{ name: LONG, parameters: {} }, { name: "f" }],
    function_call: { name: LONG },
    tools: [fn("a.b")],
    messages: [
      { role: "assistant", content: null, function_call: { name: LONG, arguments: "{}" } },
      { role: "function", name: LONG, content: "x" },
    ],
  };
  const shortened = shortenChatToolNames(body);
  assert.ok(shortened !== undefined);
  const dotted = upstreamToolName("a.b");
  assert.match(dotted, /^a_b_[0-9a-f]{8}$/);
  assert.deepEqual(shortened.body, {
    functions: [{ name: SHORT, parameters: {} }, { name: "f" }],
    function_call: { name: SHORT },
    tools: [fn(dotted)],
    messages: [
      { role: "assistant", content: null, function_call: { name: SHORT, arguments: "{}" } },
      { role: "function", name: SHORT, content: "x" },
    ],
  });
  assert.equal(shortenChatToolNames({ function_call: "auto", functions: [{ name: "f" }] }), undefined);
  const answer = JSON.stringify({ choices: [{ message: { function_call: { name: SHORT, arguments: "{}" } } }] });
  assert.deepEqual(JSON.parse(clientNamedAnswer(answer, shortened.names)).choices[0].message.function_call, {
    name: LONG,
    arguments: "{}",
  });
  const chunk = { choices: [{ delta: { function_call: { name: dotted } } }] };
  assert.equal(restoreChunkToolNames(chunk, shortened.names), true);
  assert.deepEqual(chunk.choices[0]?.delta.function_call, { name: "a.b" });
});

test("chat: a tool named like another's renamed form keeps its name; the renamed one is hashed again", () => {
  const dotted = "server.tool";
  const taken = upstreamToolName(dotted);
  const tool = (name: string) => ({ type: "function", function: { name, parameters: {} } });
  const shortened = shortenChatToolNames({
    model: "m",
    messages: [{ role: "user", content: "hi" }],
    tools: [tool(dotted), tool(taken)],
  });
  const sent = ((shortened?.body.tools ?? []) as { function: { name: string } }[]).map(
    (sentTool) => sentTool.function.name,
  );
  assert.equal(sent[1], taken);
  assert.notEqual(sent[0], taken);
  assert.equal(new Set(sent).size, 2, "two tools, two names upstream");
  const answer = (name: string) =>
    JSON.stringify({ choices: [{ message: { tool_calls: [{ id: "c", type: "function", function: { name } }] } }] });
  const names = shortened?.names;
  assert.ok(names !== undefined);
  assert.match(clientNamedAnswer(answer(sent[0] ?? ""), names), /"name":"server\.tool"/);
  assert.equal(clientNamedAnswer(answer(taken), names), answer(taken));
});

test("chat: custom (freeform) tools with names providers refuse are renamed and their calls mapped back", () => {
  const name = "apply.patch/v2";
  const shortened = shortenChatToolNames({
    model: "m",
    messages: [
      { role: "user", content: "patch it" },
      { role: "assistant", tool_calls: [{ id: "c0", type: "custom", custom: { name, input: "*** Begin" } }] },
      { role: "tool", tool_call_id: "c0", content: "done" },
    ],
    tools: [{ type: "custom", custom: { name, description: "Apply a patch", format: { type: "text" } } }],
    tool_choice: { type: "custom", custom: { name } },
  });
  const body = shortened?.body as {
    tools: { custom: { name: string; description: string } }[];
    tool_choice: { custom: { name: string } };
    messages: { tool_calls?: { custom: { name: string; input: string } }[] }[];
  };
  const upstream = body.tools[0]?.custom.name ?? "";
  assert.match(upstream, /^apply_patch_v2_[0-9a-f]{8}$/);
  assert.equal(body.tools[0]?.custom.description, "Apply a patch");
  assert.equal(body.tool_choice.custom.name, upstream);
  assert.deepEqual(body.messages[1]?.tool_calls?.[0]?.custom, { name: upstream, input: "*** Begin" });
  const names = shortened?.names;
  assert.ok(names !== undefined);
  const call = { id: "c1", type: "custom", custom: { name: upstream, input: "x" } };
  const answered = JSON.parse(
    clientNamedAnswer(JSON.stringify({ choices: [{ message: { tool_calls: [call] } }] }), names),
  );
  assert.equal(answered.choices[0].message.tool_calls[0].custom.name, name);
  const chunk = { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, ...call }] } }] };
  assert.equal(restoreChunkToolNames(chunk, names), true);
  assert.equal(chunk.choices[0]?.delta.tool_calls[0]?.custom.name, name);
});
