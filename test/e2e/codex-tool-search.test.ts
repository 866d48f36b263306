// Codex CLI's client-run `tool_search`, replayed from the requests Codex 0.171.0 sent the gateway (test/fixtures/
// agent-cli/codex-0.171-tool-search-*.json): for GPT-5 model names Codex keeps its MCP servers' tools out of
// `tools` and offers them through a `tool_search` tool it runs itself. Left out as a hosted tool, the model could
// never reach an MCP tool. The turn: the model searches (a `tool_search_call` item back to Codex), Codex answers
// with a `tool_search_output` item holding the tools it loaded (it does not add them to `tools`), the model calls
// the loaded `lookup_fact` (a `function_call` in the `mcp__probe` namespace), and answers with its result.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { finished } from "../helpers/background-steps.ts";
import { toolCallCompletion, toolCallStream } from "../helpers/chat-tool-calls.ts";
import { CHAT_ROUTE, chatRequests, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, chatStream, type MockUpstream } from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = "vendor/m-instruct";
const CLIENT_KEY = "client-key-codex";

interface CapturedRequest {
  readonly headers: Record<string, string>;
  readonly body: Record<string, unknown>;
}

function captured(step: 1 | 2 | 3): CapturedRequest {
  const url = new URL(`../fixtures/agent-cli/codex-0.171-tool-search-${step}.json`, import.meta.url);
  const request = JSON.parse(readFileSync(url, "utf8")) as CapturedRequest;
  return { ...request, body: { ...request.body, input: withDistinctIds(request.body.input) } };
}

const ZEROED_UUID = "00000000-0000-0000-0000-000000000000";

/**
 * The input items' ids as distinct as Codex sent them: the capture zeroed their UUIDs (fixtures README), which made
 * them one id several times, a duplicate item OpenAI and the gateway refuse.
 */
function withDistinctIds(input: unknown): unknown {
  if (!Array.isArray(input)) return input;
  return input.map((item: unknown, index) => {
    const record = item as Record<string, unknown>;
    if (typeof record.id !== "string" || !record.id.includes(ZEROED_UUID)) return item;
    return {
      ...record,
      id: record.id.replace(ZEROED_UUID, `00000000-0000-0000-0000-${String(index).padStart(12, "0")}`),
    };
  });
}

/** The gateway serving the model name Codex was configured with, `gpt-5.5`, from one mock provider. */
async function scene(t: Parameters<typeof useMock>[0]): Promise<{ mock: MockUpstream; gateway: TestGateway }> {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
  api_keys: [${CLIENT_KEY}]
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      gpt-5.5: { id: ${UPSTREAM_ID} }
`,
  );
  return { mock, gateway };
}

/** Sends a captured request as Codex did: its headers, its body, the client key as a bearer token. */
async function replay(gateway: TestGateway, request: CapturedRequest, bodyChanges: Record<string, unknown> = {}) {
  return send(gateway, "POST", "/v1/responses", {
    body: { ...request.body, ...bodyChanges },
    headers: { ...request.headers, authorization: `Bearer ${CLIENT_KEY}` },
  });
}

/** The items of a stream's `response.output_item.done` events, in order. */
function doneItems(streamText: string): Record<string, unknown>[] {
  const items: Record<string, unknown>[] = [];
  for (const line of streamText.split("\n")) {
    if (!line.startsWith("data: ")) continue;
    const event = JSON.parse(line.slice("data: ".length)) as { type: string; item?: Record<string, unknown> };
    if (event.type === "response.output_item.done" && event.item !== undefined) items.push(event.item);
  }
  return items;
}

interface SentChat {
  messages: { role: string; content: unknown; tool_call_id?: string; tool_calls?: unknown[] }[];
  tools?: { function: { name: string; description?: string; parameters: unknown } }[];
}

function sent(mock: MockUpstream, index: number): SentChat {
  return chatRequests(mock)[index]?.body as SentChat;
}

function toolNames(chat: SentChat): string[] {
  return (chat.tools ?? []).map((tool) => tool.function.name);
}

describe("Codex's client-run tool_search over a chat provider", () => {
  test("the search goes upstream as a function; the model's call of it reaches Codex as a tool_search_call item", async (t) => {
    const { mock, gateway } = await scene(t);
    const search = { id: "call_1", name: "tool_search", arguments: '{"query":"lookup fact","limit":5}' };
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: toolCallStream(UPSTREAM_ID, [search]) });
    const answer = await replay(gateway, captured(1));
    assert.equal(answer.status, 200, answer.text);
    // Only the hosted web search is left out now.
    assert.equal(answer.headers["x-gateway-dropped-tools"], "web_search");

    const upstream = sent(mock, 0);
    const offered = upstream.tools?.find((tool) => tool.function.name === "tool_search");
    assert.ok(offered, `tool_search not offered upstream: ${toolNames(upstream).join(", ")}`);
    assert.deepEqual(offered.function.parameters, {
      type: "object",
      properties: {
        limit: { type: "number", description: "Maximum number of tools to return. Defaults to 8." },
        query: { type: "string", description: "Search query for deferred tools." },
      },
      required: ["query"],
      additionalProperties: false,
    });
    assert.match(offered.function.description ?? "", /^# Tool discovery/);

    const items = doneItems(answer.text);
    assert.equal(items.length, 1);
    assert.deepEqual(
      { ...items[0], id: "tsc" },
      {
        id: "tsc",
        type: "tool_search_call",
        status: "completed",
        call_id: "call_1",
        execution: "client",
        arguments: { query: "lookup fact", limit: 5 },
      },
    );
  });

  test("without streaming too, the call is a tool_search_call output item", async (t) => {
    const { mock, gateway } = await scene(t);
    const search = { id: "call_9", name: "tool_search", arguments: '{"query":"fact"}' };
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: toolCallCompletion(UPSTREAM_ID, [search]) });
    const answer = await replay(gateway, captured(1), { stream: false });
    assert.equal(answer.status, 200, answer.text);
    const output = (answer.json as { output: Record<string, unknown>[] }).output;
    assert.deepEqual(
      output.map((item) => [item.type, item.call_id, item.execution, item.arguments]),
      [["tool_search_call", "call_9", "client", { query: "fact" }]],
    );
  });

  test("the tools Codex's search loaded are offered upstream, and the model's call of one comes back in its namespace", async (t) => {
    const { mock, gateway } = await scene(t);
    const lookup = { id: "call_2", name: "mcp__probe__lookup_fact", arguments: '{"key":"alpha"}' };
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: toolCallStream(UPSTREAM_ID, [lookup]) });
    const answer = await replay(gateway, captured(2));
    assert.equal(answer.status, 200, answer.text);

    const upstream = sent(mock, 0);
    const loaded = upstream.tools?.find((tool) => tool.function.name === "mcp__probe__lookup_fact");
    assert.ok(loaded, `the loaded tool is not offered upstream: ${toolNames(upstream).join(", ")}`);
    assert.deepEqual(loaded.function.parameters, {
      type: "object",
      properties: { key: { type: "string" } },
      required: ["key"],
    });
    assert.ok(toolNames(upstream).includes("tool_search"), "the search stays offered");
    // The search is the assistant's call and its output a tool message naming what the model may call now.
    const [call, result] = upstream.messages.slice(-2);
    assert.deepEqual(call?.tool_calls, [
      {
        id: "call_1",
        type: "function",
        function: { name: "tool_search", arguments: '{"query":"lookup fact","limit":5}' },
      },
    ]);
    assert.equal(result?.role, "tool");
    assert.equal(result?.tool_call_id, "call_1");
    assert.equal(result?.content, "Loaded tools, callable now: mcp__probe__lookup_fact.");

    const items = doneItems(answer.text);
    assert.deepEqual(
      items.map((item) => [item.type, item.name, item.namespace, item.call_id, item.arguments]),
      [["function_call", "lookup_fact", "mcp__probe", "call_2", '{"key":"alpha"}']],
    );
  });

  test("after the loaded tool ran, the turn ends with the model's text; the loaded tool is still offered", async (t) => {
    const { mock, gateway } = await scene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(["The fact ", "is mcp-ok."], UPSTREAM_ID, { usage: true }),
    });
    const answer = await replay(gateway, captured(3));
    assert.equal(answer.status, 200, answer.text);
    const upstream = sent(mock, 0);
    assert.ok(toolNames(upstream).includes("mcp__probe__lookup_fact"));
    // Codex's namespaced call goes upstream under the name the model called.
    const calls = upstream.messages.flatMap((message) => message.tool_calls ?? []) as { function: { name: string } }[];
    assert.deepEqual(
      calls.map((call) => call.function.name),
      ["tool_search", "mcp__probe__lookup_fact"],
    );
    const items = doneItems(answer.text);
    assert.equal(items.at(-1)?.type, "message");
  });

  test("a function of the request named tool_search next to the client-run search is a 400 naming it", async (t) => {
    const { gateway } = await scene(t);
    const request = captured(1);
    const tools = [
      ...(request.body.tools as unknown[]),
      { type: "function", name: "tool_search", parameters: { type: "object", properties: {} } },
    ];
    const answer = await replay(gateway, request, { tools });
    assert.equal(answer.status, 400, answer.text);
    const error = (answer.json as { error: { param: string; message: string } }).error;
    assert.equal(error.param, `tools[${tools.length - 1}].name`);
    assert.match(error.message, /tool_search/);
  });

  test("a tool_search_output whose tools are not a list is a 400 naming it, nothing sent upstream", async (t) => {
    const { mock, gateway } = await scene(t);
    const request = captured(2);
    const input = [...(request.body.input as Record<string, unknown>[])];
    const index = input.findIndex((item) => item.type === "tool_search_output");
    input[index] = { ...input[index], tools: "mcp__probe" };
    const answer = await replay(gateway, request, { input });
    assert.equal(answer.status, 400, answer.text);
    const error = (answer.json as { error: { param: string; code: string } }).error;
    assert.equal(error.param, `input[${index}].tools`);
    assert.equal(chatRequests(mock).length, 0);
  });
});

/** The client-run search and the output that loaded `lookup_fact`, as Codex sent them (second captured request). */
function capturedSearch(): { search: Record<string, unknown>; output: Record<string, unknown> } {
  const body = captured(2).body;
  const search = (body.tools as Record<string, unknown>[]).find((tool) => tool.type === "tool_search");
  const output = (body.input as Record<string, unknown>[]).find((item) => item.type === "tool_search_output");
  assert.ok(search !== undefined && output !== undefined);
  const { id: _id, ...withoutId } = output;
  return { search, output: withoutId };
}

describe("a conversation continued by previous_response_id (the openai client)", () => {
  test("the tools an earlier turn's search loaded are offered again, and the model's call of one comes back in its namespace", async (t) => {
    const { mock, gateway } = await scene(t);
    const openai = new OpenAI({ baseURL: gateway.baseUrl, apiKey: CLIENT_KEY, maxRetries: 0 });
    const { search, output } = capturedSearch();
    const tools = [search] as unknown as OpenAI.Responses.Tool[];

    // Turn 1: the model searches.
    const searchCall = { id: "call_1", name: "tool_search", arguments: '{"query":"lookup fact","limit":5}' };
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: toolCallCompletion(UPSTREAM_ID, [searchCall]) });
    const first = await openai.responses.create({ model: "gpt-5.5", tools, input: "Find the fact tool." });
    assert.deepEqual(
      first.output.map((item) => item.type),
      ["tool_search_call"],
    );

    // Turn 2: the client answers with the tools it loaded; the model calls the loaded one.
    const lookup = { id: "call_2", name: "mcp__probe__lookup_fact", arguments: '{"key":"alpha"}' };
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: toolCallCompletion(UPSTREAM_ID, [lookup]) });
    const second = await openai.responses.create({
      model: "gpt-5.5",
      tools,
      previous_response_id: first.id,
      input: [output as unknown as OpenAI.Responses.ResponseInputItem],
    });
    assert.ok(toolNames(sent(mock, 1)).includes("mcp__probe__lookup_fact"));

    // Turn 3: previous_response_id and the call's output only. The search's output is in the kept history; the tool
    // it loaded must still be offered, or the model reads "callable now" and cannot call it.
    const again = { id: "call_3", name: "mcp__probe__lookup_fact", arguments: '{"key":"beta"}' };
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: toolCallStream(UPSTREAM_ID, [again]) });
    const stream = await openai.responses.create({
      model: "gpt-5.5",
      tools,
      previous_response_id: second.id,
      input: [{ type: "function_call_output", call_id: "call_2", output: "alpha is mcp-ok" }],
      stream: true,
    });
    let third: OpenAI.Responses.Response | undefined;
    for await (const event of stream) if (event.type === "response.completed") third = event.response;
    const upstream = sent(mock, 2);
    const loaded = upstream.tools?.find((tool) => tool.function.name === "mcp__probe__lookup_fact");
    assert.ok(loaded, `the loaded tool is not offered on the continuation: ${toolNames(upstream).join(", ")}`);
    assert.deepEqual(loaded.function.parameters, {
      type: "object",
      properties: { key: { type: "string" } },
      required: ["key"],
    });
    assert.deepEqual(
      toolNames(upstream).filter((name) => name === "tool_search"),
      ["tool_search"],
      "the search is offered once",
    );
    assert.deepEqual(
      third?.output.map((item) => [
        item.type,
        "namespace" in item ? item.namespace : undefined,
        "name" in item ? item.name : undefined,
      ]),
      [["function_call", "mcp__probe", "lookup_fact"]],
    );

    // Turn 4, from turn 3: still offered two continuations after the search, with no tools of the client's at all.
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: toolCallCompletion(UPSTREAM_ID, [again]) });
    await openai.responses.create({
      model: "gpt-5.5",
      previous_response_id: third?.id ?? "",
      input: [{ type: "function_call_output", call_id: "call_3", output: "beta is mcp-ok" }],
    });
    assert.deepEqual(toolNames(sent(mock, 3)), ["mcp__probe__lookup_fact"]);
  });
});

describe("a background response continued by previous_response_id", () => {
  test("keeps the tools its input's search loaded: the continuation offers them", async (t) => {
    const { mock, gateway } = await scene(t);
    const openai = new OpenAI({ baseURL: gateway.baseUrl, apiKey: CLIENT_KEY, maxRetries: 0 });
    const { search, output } = capturedSearch();
    const tools = [search] as unknown as OpenAI.Responses.Tool[];
    const searchCall = {
      type: "tool_search_call",
      call_id: "call_1",
      execution: "client",
      arguments: { query: "fact" },
    };
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Loaded.", UPSTREAM_ID) });
    const created = await openai.responses.create({
      model: "gpt-5.5",
      tools,
      background: true,
      input: [searchCall, output] as unknown as OpenAI.Responses.ResponseInputItem[],
    });
    assert.equal((await finished(openai, created.id)).status, "completed");
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Done.", UPSTREAM_ID) });
    await openai.responses.create({ model: "gpt-5.5", tools, previous_response_id: created.id, input: "Use it." });
    assert.ok(
      toolNames(sent(mock, 1)).includes("mcp__probe__lookup_fact"),
      `not offered: ${toolNames(sent(mock, 1)).join(", ")}`,
    );
  });
});

describe("a loaded function named tool_search beside the client-run search", () => {
  /** An issue tracker's own search, loaded as a top-level function by Codex's search next to the MCP namespace. */
  const trackerSearch = {
    type: "function",
    name: "tool_search",
    description: "Search the issue tracker.",
    parameters: { type: "object", properties: { terms: { type: "string" } }, required: ["terms"] },
  };

  /** Codex's second request, its search having loaded the tracker's search too; `after`: items following it. */
  function withTrackerSearch(after: Record<string, unknown>[] = []): Record<string, unknown> {
    const request = captured(2);
    const input = (request.body.input as Record<string, unknown>[]).map((item) =>
      item.type === "tool_search_output" ? { ...item, tools: [...(item.tools as unknown[]), trackerSearch] } : item,
    );
    return { input: [...input, ...after] };
  }

  test("it goes upstream under a name of its own, the model is told that name, and its calls come back as tool_search function calls", async (t) => {
    const { mock, gateway } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Let me look.", UPSTREAM_ID) });
    const first = await replay(gateway, captured(2), { ...withTrackerSearch(), stream: false });
    assert.equal(first.status, 200, first.text);
    const offered = sent(mock, 0).tools ?? [];
    const renamed = offered.find((tool) => tool.function.description === "Search the issue tracker.");
    assert.ok(renamed, `the loaded tool_search is not offered: ${toolNames(sent(mock, 0)).join(", ")}`);
    assert.match(renamed.function.name, /^tool_search_[0-9a-f]{8}$/);
    assert.deepEqual(renamed.function.parameters, trackerSearch.parameters);
    const search = offered.filter((tool) => tool.function.name === "tool_search");
    assert.equal(search.length, 1, "tool_search is one function upstream");
    assert.match(search[0]?.function.description ?? "", /^# Tool discovery/, "and it is the client-run search");
    const result = sent(mock, 0).messages.find((message) => message.tool_call_id === "call_1");
    assert.equal(result?.content, `Loaded tools, callable now: mcp__probe__lookup_fact, ${renamed.function.name}.`);

    // The model calls both: the tracker's search by the name it was given, and the client's search again.
    const calls = [
      { id: "call_5", name: renamed.function.name, arguments: '{"terms":"flaky test"}' },
      { id: "call_6", name: "tool_search", arguments: '{"query":"more"}' },
    ];
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: toolCallStream(UPSTREAM_ID, calls) });
    const answer = await replay(gateway, captured(2), withTrackerSearch());
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(
      doneItems(answer.text).map((item) => [item.type, item.name, item.namespace, item.call_id]),
      [
        ["function_call", "tool_search", undefined, "call_5"],
        ["tool_search_call", undefined, undefined, "call_6"],
      ],
    );

    // Codex sends the call back as it got it: upstream it is the renamed function's call again.
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["Found it."], UPSTREAM_ID, { usage: true }) });
    const next = await replay(
      gateway,
      captured(2),
      withTrackerSearch([
        { type: "function_call", call_id: "call_5", name: "tool_search", arguments: '{"terms":"flaky test"}' },
        { type: "function_call_output", call_id: "call_5", output: "#42 flaky test" },
      ]),
    );
    assert.equal(next.status, 200, next.text);
    const upstreamCalls = sent(mock, 2).messages.flatMap((message) => message.tool_calls ?? []) as {
      id: string;
      function: { name: string };
    }[];
    assert.deepEqual(
      upstreamCalls.map((call) => [call.id, call.function.name]),
      [
        ["call_1", "tool_search"],
        ["call_5", renamed.function.name],
      ],
    );
  });

  test("a continuation that stops offering the search keeps the function's own name upstream, for its calls too", async (t) => {
    // Codex offers its search to some model names only: switched to another in the session, the request still holds
    // the search's items and the tracker's search they loaded, but no client-run search. The function went back to
    // `tool_search`, the name the history's calls of the search have.
    const { mock, gateway } = await scene(t);
    const request = captured(2);
    const tools = (request.body.tools as { type: string }[]).filter((tool) => tool.type !== "tool_search");
    const history = withTrackerSearch([
      { type: "function_call", call_id: "call_5", name: "tool_search", arguments: '{"terms":"flaky test"}' },
      { type: "function_call_output", call_id: "call_5", output: "#42 flaky test" },
    ]);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Let me look.", UPSTREAM_ID) });
    const first = await replay(gateway, request, { ...history, tools, stream: false });
    assert.equal(first.status, 200, first.text);
    const offered = sent(mock, 0).tools ?? [];
    const renamed = offered.find((tool) => tool.function.description === "Search the issue tracker.");
    assert.match(renamed?.function.name ?? "", /^tool_search_[0-9a-f]{8}$/);
    assert.equal(offered.filter((tool) => tool.function.name === "tool_search").length, 0);
    const upstreamCalls = sent(mock, 0).messages.flatMap((message) => message.tool_calls ?? []) as {
      id: string;
      function: { name: string };
    }[];
    assert.deepEqual(
      upstreamCalls.map((call) => [call.id, call.function.name]),
      [
        ["call_1", "tool_search"],
        ["call_5", renamed?.function.name],
      ],
    );
    // The model's call of it comes back under the tool's own name.
    const name = renamed?.function.name ?? "";
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: toolCallCompletion(UPSTREAM_ID, [{ id: "call_8", name, arguments: '{"terms":"again"}' }]),
    });
    const answer = await replay(gateway, request, { ...history, tools, stream: false });
    assert.equal(answer.status, 200, answer.text);
    const output = (answer.json as { output: { type: string; name?: string; call_id?: string }[] }).output;
    assert.deepEqual(
      output.map((item) => [item.type, item.name, item.call_id]),
      [["function_call", "tool_search", "call_8"]],
    );
  });

  test("a function of the request's own so named is still refused: the client can rename its own", async (t) => {
    const { gateway } = await scene(t);
    const request = captured(2);
    const tools = [...(request.body.tools as unknown[]), trackerSearch];
    const answer = await replay(gateway, request, { ...withTrackerSearch(), tools });
    assert.equal(answer.status, 400, answer.text);
    assert.equal((answer.json as { error: { param: string } }).error.param, `tools[${tools.length - 1}].name`);
  });
});

describe("a tool a later search loads again with a changed schema", () => {
  test("goes upstream as the latest search listed it (the MCP server changed the tool between searches)", async (t) => {
    const { mock, gateway } = await scene(t);
    const request = captured(2);
    const changed = {
      type: "namespace",
      name: "mcp__probe",
      description: "Tools in the mcp__probe namespace.",
      tools: [
        {
          type: "function",
          name: "lookup_fact",
          description: "Look up a fact by key, in a namespace of facts",
          strict: false,
          defer_loading: true,
          parameters: {
            type: "object",
            properties: { key: { type: "string" }, scope: { type: "string" } },
            required: ["key", "scope"],
          },
        },
      ],
    };
    const input = [
      ...(request.body.input as unknown[]),
      {
        type: "tool_search_call",
        call_id: "call_2",
        status: "completed",
        execution: "client",
        arguments: { query: "lookup fact again" },
      },
      { type: "tool_search_output", call_id: "call_2", status: "completed", execution: "client", tools: [changed] },
    ];
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Let me look.", UPSTREAM_ID) });
    const answer = await replay(gateway, request, { input, stream: false });
    assert.equal(answer.status, 200, answer.text);
    const offered = (sent(mock, 0).tools ?? []).filter((tool) => tool.function.name === "mcp__probe__lookup_fact");
    assert.equal(offered.length, 1);
    assert.deepEqual(offered[0]?.function.parameters, changed.tools[0]?.parameters);
    assert.match(offered[0]?.function.description ?? "", /in a namespace of facts/);
  });
});
