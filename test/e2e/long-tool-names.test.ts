// Tool names longer than the 64 characters chat providers take (MCP tools named `mcp__<server>__<tool>` by Claude
// Code, Codex, Cursor and the agent SDKs), on the Chat Completions and Responses doors: they go upstream shortened
// (55 characters, `_`, 8 hex digits of a hash of the whole name) in the tools, the tool choice and the history's calls
// alike, and the model's calls come back under the client's names, JSON and streamed. Before, only the Messages door
// did so (client-conformance.test.ts); on these doors every request carrying such a tool was refused upstream.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FUNCTION_NAME, functionNameCheckingUpstream } from "../helpers/chat-tool-calls.ts";
import { CHAT_ROUTE, chatRequests, oneProviderScene, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import type { MockUpstream } from "../helpers/mock-upstream.ts";

// 81 characters, and a second one (an older call's tool, no longer offered) sharing its first 55.
const LONG_NAME = "mcp__acme-internal-knowledge-base__search_confluence_pages_by_label_and_space_key";
const OLDER_NAME = "mcp__acme-internal-knowledge-base__search_confluence_pages_by_title_and_space_key";
const ARGUMENTS = '{"label":"runbook"}';
const PARAMETERS = { type: "object", properties: { label: { type: "string" } } };

interface SentChat {
  tools: { function: { name: string; parameters?: unknown } }[];
  tool_choice: { function: { name: string } };
  messages: { tool_calls?: { function: { name: string } }[] }[];
}

/** The names the upstream got: the tool's, the tool choice's, and the history's calls'. */
function sentNames(mock: MockUpstream): { tool: string; choice: string; history: string[]; parameters: unknown } {
  const sent = chatRequests(mock).at(-1)?.body as SentChat;
  return {
    tool: sent.tools[0]?.function.name ?? "",
    choice: sent.tool_choice.function.name,
    history: sent.messages.flatMap((message) => (message.tool_calls ?? []).map((call) => call.function.name)),
    parameters: sent.tools[0]?.function.parameters,
  };
}

/** The upstream got one function name chat takes, the same in the tools, the choice and the history's call of it. */
function assertShortenedConsistently(mock: MockUpstream): void {
  const names = sentNames(mock);
  assert.match(names.tool, FUNCTION_NAME);
  assert.match(names.tool, /^mcp__acme-internal-knowledge-base__search_confluence_pa_[0-9a-f]{8}$/);
  assert.equal(names.choice, names.tool);
  assert.equal(names.history.length, 2);
  assert.equal(names.history[0], names.tool, "the history's call of the offered tool: the same function");
  assert.match(names.history[1] ?? "", FUNCTION_NAME);
  assert.notEqual(names.history[1], names.tool, "another long name sharing the first 55 characters differs");
  assert.deepEqual(names.parameters, PARAMETERS);
}

describe("chat door: tool names longer than 64 characters", () => {
  const messages = [
    { role: "user" as const, content: "Find the runbooks." },
    {
      role: "assistant" as const,
      content: null,
      tool_calls: [
        { id: "call_1", type: "function" as const, function: { name: LONG_NAME, arguments: '{"label":"ops"}' } },
        { id: "call_0", type: "function" as const, function: { name: OLDER_NAME, arguments: '{"title":"x"}' } },
      ],
    },
    { role: "tool" as const, tool_call_id: "call_1", content: "no pages" },
    { role: "tool" as const, tool_call_id: "call_0", content: "no pages" },
  ];
  const request = {
    model: "m",
    messages,
    tools: [{ type: "function" as const, function: { name: LONG_NAME, parameters: PARAMETERS } }],
    tool_choice: { type: "function" as const, function: { name: LONG_NAME } },
  };

  test("JSON: the openai SDK gets the call under the client's name", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, functionNameCheckingUpstream(VENDOR_MODEL_ID, false, ARGUMENTS));
    const completion = await client.chat.completions.create(request);
    assert.deepEqual(completion.choices[0]?.message.tool_calls, [
      { id: "call_search", type: "function", function: { name: LONG_NAME, arguments: ARGUMENTS } },
    ]);
    assertShortenedConsistently(mock);
  });

  test("streamed: the openai SDK's stream helper gets the call, and its done event, under the client's name", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, functionNameCheckingUpstream(VENDOR_MODEL_ID, true, ARGUMENTS));
    const stream = client.chat.completions.stream(request);
    const done: unknown[] = [];
    stream.on("tool_calls.function.arguments.done", (event) => done.push([event.name, event.arguments]));
    const final = await stream.finalChatCompletion();
    assert.deepEqual(final.choices[0]?.message.tool_calls, [
      { id: "call_search", type: "function", function: { name: LONG_NAME, arguments: ARGUMENTS } },
    ]);
    assert.deepEqual(done, [[LONG_NAME, ARGUMENTS]]);
    assertShortenedConsistently(mock);
  });

  test("a request whose names chat takes goes upstream as it came", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, functionNameCheckingUpstream(VENDOR_MODEL_ID, false, ARGUMENTS));
    const completion = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "Find the runbooks." }],
      tools: [{ type: "function", function: { name: "search", parameters: PARAMETERS } }],
    });
    assert.equal(completion.choices[0]?.message.tool_calls?.[0]?.type, "function");
    assert.deepEqual(chatRequests(mock)[0]?.body, {
      model: VENDOR_MODEL_ID,
      messages: [{ role: "user", content: "Find the runbooks." }],
      tools: [{ type: "function", function: { name: "search", parameters: PARAMETERS } }],
    });
  });
});

describe("responses door: tool names longer than 64 characters", () => {
  const request = {
    model: "m",
    input: [
      { role: "user" as const, content: "Find the runbooks." },
      { type: "function_call" as const, call_id: "call_1", name: LONG_NAME, arguments: '{"label":"ops"}' },
      { type: "function_call" as const, call_id: "call_0", name: OLDER_NAME, arguments: '{"title":"x"}' },
      { type: "function_call_output" as const, call_id: "call_1", output: "no pages" },
      { type: "function_call_output" as const, call_id: "call_0", output: "no pages" },
    ],
    tools: [{ type: "function" as const, name: LONG_NAME, parameters: PARAMETERS, strict: false }],
    tool_choice: { type: "function" as const, name: LONG_NAME },
  };

  test("JSON: the openai SDK's Responses call gets the function_call under the client's name", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, functionNameCheckingUpstream(VENDOR_MODEL_ID, false, ARGUMENTS));
    const response = await client.responses.create(request);
    const calls = response.output.flatMap((item) => (item.type === "function_call" ? [item] : []));
    assert.deepEqual(
      calls.map((call) => [call.call_id, call.name, call.arguments]),
      [["call_search", LONG_NAME, ARGUMENTS]],
    );
    assertShortenedConsistently(mock);
  });

  test("streamed: the openai SDK's Responses stream gets the function_call under the client's name", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, functionNameCheckingUpstream(VENDOR_MODEL_ID, true, ARGUMENTS));
    const response = await client.responses.stream(request).finalResponse();
    const calls = response.output.flatMap((item) => (item.type === "function_call" ? [item] : []));
    assert.deepEqual(
      calls.map((call) => [call.call_id, call.name, call.arguments]),
      [["call_search", LONG_NAME, ARGUMENTS]],
    );
    assertShortenedConsistently(mock);
  });
});
