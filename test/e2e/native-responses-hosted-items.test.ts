// Hosted tools' items (`web_search_call`, `mcp_call`, ...) a native Responses provider answers are kept in their
// conversation, and its next turn is served (docs/protocols.md "Request", "Native Responses providers"): a native
// provider is sent them as they were answered (ids kept, as OpenAI's reference requires of them as input), a chat
// provider is not sent them (nothing behind it ran them or can: the model sees the messages around them). Before
// 2026-12-08 the door refused them as input, and every turn after such an answer was a 400. Client: the openai SDK;
// upstreams: "alpha" marked `responses_api: native`, "beta" a chat provider.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Agent, tool as agentTool, OpenAIProvider, Runner, setTracingDisabled, webSearchTool } from "@openai/agents";
import OpenAI from "openai";
import { z } from "zod";
import { chatCompletion } from "../helpers/mock-upstream.ts";
import {
  answerEvents,
  nativeResponse,
  RESPONSES_ROUTE,
  sseText,
  textMessage,
} from "../helpers/native-responses-stream.ts";
import { CHAT_ROUTE, MODEL, sentBody, startTwoProviders } from "../helpers/two-providers.ts";

const WEB_SEARCH_CALL = {
  type: "web_search_call",
  id: "ws_upstream_1",
  status: "completed",
  action: { type: "search", query: "gateway release notes" },
};

const MCP_CALL: OpenAI.Responses.ResponseInputItem.McpCall = {
  type: "mcp_call",
  id: "mcp_upstream_1",
  server_label: "docs",
  name: "lookup",
  arguments: '{"topic":"release"}',
  output: "Version 3 shipped.",
  error: null,
  status: "completed",
};

const TOOLS: OpenAI.Responses.Tool[] = [
  { type: "web_search" },
  { type: "mcp", server_label: "docs", server_url: "https://mcp.example.com/sse", require_approval: "never" },
];

test("a conversation holding a web_search_call and an mcp_call takes its next turns on a native and on a chat provider", async (t) => {
  const { primary, backup, client } = await startTwoProviders(t, { primary: { responses_api: "native" } });
  const conversation = await client.conversations.create({});
  // Turn 1, streamed by the native provider: the hosted items pass the stream's checks and are kept.
  const answered = answerEvents([WEB_SEARCH_CALL, MCP_CALL, textMessage("msg_upstream_1", "Found it.")]);
  primary.enqueue(RESPONSES_ROUTE, { kind: "sse", events: [{ raw: sseText(answered) }], end: "close-without-done" });
  const stream = await client.responses.create({
    model: MODEL,
    input: "Look it up",
    tools: TOOLS,
    conversation: conversation.id,
    stream: true,
  });
  let final: OpenAI.Responses.Response | undefined;
  for await (const event of stream) if (event.type === "response.completed") final = event.response;
  assert.equal(final?.output_text, "Found it.");
  const kept = await client.conversations.items.list(conversation.id, { order: "asc" });
  assert.deepEqual(
    kept.data.map((item) => item.type),
    ["message", "web_search_call", "mcp_call", "message"],
  );

  // Turn 2 on the native provider: the hosted items go as they were answered, ids included.
  primary.enqueue(RESPONSES_ROUTE, { kind: "json", body: nativeResponse([textMessage("msg_upstream_2", "Again.")]) });
  const second = await client.responses.create({ model: MODEL, input: "And then?", conversation: conversation.id });
  assert.equal(second.output_text, "Again.");
  const input = sentBody(primary, 1).input as Record<string, unknown>[];
  assert.deepEqual(
    input.map((item) => item.type),
    ["message", "web_search_call", "mcp_call", "message", "message"],
  );
  assert.deepEqual(input[1], WEB_SEARCH_CALL);
  assert.deepEqual(input[2], MCP_CALL);

  // Turn 3 on the chat provider (the native one fails): the hosted items are left out, the messages go.
  primary.enqueue(RESPONSES_ROUTE, { kind: "json", status: 500, body: { error: { message: "down" } } });
  backup.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("From chat.", "beta-model") });
  const third = await client.responses.create({ model: MODEL, input: "Third?", conversation: conversation.id });
  assert.equal(third.output_text, "From chat.");
  const messages = sentBody(backup).messages as { role: string; content: unknown; tool_calls?: unknown }[];
  assert.deepEqual(
    messages.map((message) => [message.role, message.content]),
    [
      ["user", "Look it up"],
      ["assistant", "Found it."],
      ["user", "And then?"],
      ["assistant", "Again."],
      ["user", "Third?"],
    ],
  );
  assert.equal(
    messages.some((message) => message.tool_calls !== undefined),
    false,
  );
});

test("hosted items sent as input: their documented fields are checked; unknown types are still refused", async (t) => {
  const { primary, client } = await startTwoProviders(t, { primary: { responses_api: "native" } });
  const { action: _action, ...withoutAction } = WEB_SEARCH_CALL;
  await assert.rejects(
    client.responses.create({
      model: MODEL,
      input: [withoutAction as unknown as OpenAI.Responses.ResponseInputItem, { role: "user", content: "Hi" }],
    }),
    (error: unknown) => error instanceof OpenAI.BadRequestError && /input\[0\]\.action/.test(error.message),
  );
  await assert.rejects(
    client.responses.create({
      model: MODEL,
      input: [{ type: "hologram_call", id: "h_1" } as unknown as OpenAI.Responses.ResponseInputItem],
    }),
    (error: unknown) =>
      error instanceof OpenAI.BadRequestError &&
      /Input items of type `hologram_call` are not supported/.test(error.message),
  );
  assert.equal(primary.requests.length, 0, "refused at the door");
  primary.enqueue(RESPONSES_ROUTE, { kind: "json", body: nativeResponse([textMessage("msg_1", "Taken.")]) });
  const answer = await client.responses.create({
    model: MODEL,
    input: [{ role: "user", content: "Search" }, MCP_CALL, { role: "user", content: "Thanks" }],
  });
  assert.equal(answer.output_text, "Taken.");
  assert.deepEqual((sentBody(primary).input as unknown[])[1], MCP_CALL);
});

test("Agents SDK run(): a turn holding the native provider's web_search_call goes back to it as input", async (t) => {
  const { primary, gateway } = await startTwoProviders(t, { primary: { responses_api: "native" } });
  setTracingDisabled(true);
  const runner = new Runner({ modelProvider: new OpenAIProvider({ apiKey: "x", baseURL: gateway.baseUrl }) });
  const call = {
    type: "function_call",
    id: "fc_1",
    call_id: "call_w1",
    name: "get_weather",
    arguments: '{"city":"Paris"}',
  };
  const turns = [answerEvents([WEB_SEARCH_CALL, call]), answerEvents([textMessage("msg_2", "Sunny in Paris.")])];
  for (const events of turns) {
    primary.enqueue(RESPONSES_ROUTE, { kind: "sse", events: [{ raw: sseText(events) }], end: "close-without-done" });
  }
  const agent = new Agent({
    name: "Weather agent",
    instructions: "Search, then answer with the tool.",
    model: MODEL,
    tools: [
      webSearchTool(),
      agentTool({
        name: "get_weather",
        description: "Current weather for a city",
        parameters: z.object({ city: z.string() }),
        execute: async ({ city }) => `sunny in ${city}`,
      }),
    ],
  });
  const result = await runner.run(agent, "Weather in Paris?", { stream: true });
  for await (const _event of result.toStream());
  await result.completed;
  assert.equal(result.finalOutput, "Sunny in Paris.");
  const input = sentBody(primary, 1).input as Record<string, unknown>[];
  const search = input.find((item) => item.type === "web_search_call");
  assert.equal(search?.id, WEB_SEARCH_CALL.id, JSON.stringify(input));
  assert.ok(input.some((item) => item.type === "function_call_output" && item.call_id === "call_w1"));
});

test("previous_response_id on a native provider: the previous answer's hosted items go back as it answered them", async (t) => {
  const { primary, client } = await startTwoProviders(t, { primary: { responses_api: "native" } });
  const first = nativeResponse([WEB_SEARCH_CALL, MCP_CALL, textMessage("msg_upstream_1", "Found it.")]);
  primary.enqueue(RESPONSES_ROUTE, { kind: "json", body: first });
  const answer = await client.responses.create({ model: MODEL, input: "Look it up", tools: TOOLS });
  primary.enqueue(RESPONSES_ROUTE, { kind: "json", body: nativeResponse([textMessage("msg_upstream_2", "Again.")]) });
  const next = await client.responses.create({ model: MODEL, input: "And then?", previous_response_id: answer.id });
  assert.equal(next.output_text, "Again.");
  const input = sentBody(primary, 1).input as Record<string, unknown>[];
  assert.deepEqual(
    input.map((item) => [item.type, item.role ?? null]),
    [
      ["message", "user"],
      ["web_search_call", null],
      ["mcp_call", null],
      ["message", "assistant"],
      ["message", "user"],
    ],
  );
  assert.deepEqual(input[1], WEB_SEARCH_CALL);
  assert.deepEqual(input[2], MCP_CALL);
  assert.equal(input[3]?.id, undefined, "a message's kept id is not sent (the provider was asked with store: false)");
});

test("a hosted item a client adds to a conversation goes to the native provider under its own id", async (t) => {
  const { primary, client } = await startTwoProviders(t, { primary: { responses_api: "native" } });
  // The Agents SDK's conversation session adds a run's items so (conversations.items.create); OpenAI refuses a
  // web_search_call whose id it did not issue ("Expected an ID that begins with 'ws'").
  const conversation = await client.conversations.create({
    items: [
      { type: "message", role: "user", content: "Look it up" },
      WEB_SEARCH_CALL,
    ] as OpenAI.Responses.ResponseInputItem[],
  });
  primary.enqueue(RESPONSES_ROUTE, { kind: "json", body: nativeResponse([textMessage("msg_upstream_3", "Done.")]) });
  await client.responses.create({ model: MODEL, input: "And then?", conversation: conversation.id });
  const input = sentBody(primary).input as Record<string, unknown>[];
  const search = input.find((item) => item.type === "web_search_call");
  assert.equal(search?.id, WEB_SEARCH_CALL.id, JSON.stringify(input));
});

test("a server-run tool search's items (call_id null) go to a native provider as they came, a chat one leaves them out", async (t) => {
  const { primary, backup, client } = await startTwoProviders(t, { primary: { responses_api: "native" } });
  const search = [
    { type: "tool_search_call", id: "ts_1", call_id: null, execution: "server", arguments: {}, status: "completed" },
    { type: "tool_search_output", id: "tso_1", call_id: null, execution: "server", tools: [], status: "completed" },
  ];
  const input = [
    { role: "user", content: "Find a tool" },
    ...search,
  ] as unknown as OpenAI.Responses.ResponseInputItem[];
  primary.enqueue(RESPONSES_ROUTE, { kind: "json", body: nativeResponse([textMessage("msg_upstream_4", "Native.")]) });
  assert.equal((await client.responses.create({ model: MODEL, input })).output_text, "Native.");
  const sent = sentBody(primary).input as Record<string, unknown>[];
  assert.deepEqual(sent.slice(1), search);
  primary.enqueue(RESPONSES_ROUTE, { kind: "json", status: 500, body: { error: { message: "down" } } });
  backup.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("From chat.", "beta-model") });
  assert.equal((await client.responses.create({ model: MODEL, input })).output_text, "From chat.");
  assert.deepEqual(sentBody(backup).messages, [{ role: "user", content: "Find a tool" }]);
});
