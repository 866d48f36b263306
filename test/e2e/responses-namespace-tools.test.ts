// `namespace` tools through POST /v1/responses, with the official openai SDK as the client: Codex groups an MCP
// server's tools under `mcp__<server>__`, and the OpenAI Agents SDK's toolNamespace() does the same. A chat
// provider gets the members as functions of their own (`mcp__github__create_issue`); the client gets its calls
// back named as it offered them (`name` + `namespace`), streamed or not, and sends them back the same way.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  Agent,
  tool as agentTool,
  OpenAIProvider,
  run,
  setDefaultModelProvider,
  setTracingDisabled,
  toolNamespace,
} from "@openai/agents";
import OpenAI from "openai";
import { z } from "zod";
import { toolCallCompletion } from "../helpers/chat-tool-calls.ts";
import { CHAT_ROUTE, chatRequests, errorOf, oneProviderScene, send, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import { chatCompletion, type MockUpstream, type SseScript } from "../helpers/mock-upstream.ts";

const NAMESPACE = "mcp__github__";
const UPSTREAM_NAME = "mcp__github__create_issue";
const ARGUMENTS = '{"title":"Crash on start"}';

const tools = [
  { type: "function", name: "exec_command", parameters: { type: "object", properties: {} }, strict: false },
  {
    type: "namespace",
    name: NAMESPACE,
    description: "Tools of the github MCP server.",
    tools: [
      {
        type: "function",
        name: "create_issue",
        description: "Opens an issue.",
        parameters: { type: "object", properties: { title: { type: "string" } }, required: ["title"] },
        strict: false,
      },
      { type: "function", name: "list_issues", parameters: { type: "object", properties: {} } },
    ],
  },
] as OpenAI.Responses.Tool[];

function chunk(delta: unknown, finishReason: string | null = null): SseScript {
  return {
    data: {
      id: "chatcmpl-ns",
      object: "chat.completion.chunk",
      created: 1767225600,
      model: VENDOR_MODEL_ID,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    },
  };
}

function sentBody(
  mock: MockUpstream,
  index: number,
): {
  tools?: { function: { name: string; description?: string } }[];
  tool_choice?: unknown;
  messages?: { role: string; tool_calls?: { function: { name: string } }[] }[];
} {
  return (chatRequests(mock)[index]?.body ?? {}) as ReturnType<typeof sentBody>;
}

function upstreamCallNames(mock: MockUpstream, index: number): string[] {
  return (sentBody(mock, index).messages ?? []).flatMap((message) =>
    (message.tool_calls ?? []).map((call) => call.function.name),
  );
}

describe("responses API: namespace tools (MCP servers' tools as Codex and the Agents SDK group them)", () => {
  test("the members go upstream as flat functions; the model's call comes back named with its namespace", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: {
        id: "chatcmpl-ns",
        object: "chat.completion",
        created: 1767225600,
        model: VENDOR_MODEL_ID,
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: null,
              tool_calls: [{ id: "call_1", type: "function", function: { name: UPSTREAM_NAME, arguments: ARGUMENTS } }],
            },
            finish_reason: "tool_calls",
          },
        ],
        usage: { prompt_tokens: 30, completion_tokens: 9, total_tokens: 39 },
      },
    });
    const response = await client.responses.create({
      model: "m",
      input: "File the crash.",
      tools,
      // The Agents SDK names a namespaced function so.
      tool_choice: { type: "function", name: `${NAMESPACE}.create_issue` },
    });
    const [item] = response.output;
    assert.ok(item?.type === "function_call", JSON.stringify(response.output));
    assert.equal(item.name, "create_issue");
    assert.equal(item.namespace, NAMESPACE);
    assert.equal(item.arguments, ARGUMENTS);
    assert.deepEqual(response.tools, tools, "the response repeats the client's tools");

    const sent = sentBody(mock, 0);
    assert.deepEqual(
      sent.tools?.map((tool) => tool.function.name),
      ["exec_command", UPSTREAM_NAME, "mcp__github__list_issues"],
    );
    for (const tool of sent.tools ?? []) assert.match(tool.function.name, /^[a-zA-Z0-9_-]{1,64}$/);
    assert.equal(
      sent.tools?.[1]?.function.description,
      "Opens an issue.\n\nNamespace `mcp__github__`: Tools of the github MCP server.",
    );
    assert.deepEqual(sent.tool_choice, { type: "function", function: { name: UPSTREAM_NAME } });
  });

  test("streamed: the items name the namespace; sent back, by previous_response_id or by reference, the call is the flat function again", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        chunk({
          role: "assistant",
          tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: UPSTREAM_NAME, arguments: "" } }],
        }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: ARGUMENTS } }] }),
        chunk({}, "tool_calls"),
      ],
    });
    const stream = client.responses.stream({ model: "m", input: "File the crash.", tools });
    const added: unknown[] = [];
    for await (const event of stream) if (event.type === "response.output_item.added") added.push(event.item);
    const final = await stream.finalResponse();
    assert.deepEqual(
      added.map((item) => [(item as { name?: string }).name, (item as { namespace?: string }).namespace]),
      [["create_issue", NAMESPACE]],
    );
    const [call] = final.output;
    assert.ok(call?.type === "function_call", JSON.stringify(final.output));
    assert.deepEqual([call.name, call.namespace, call.arguments], ["create_issue", NAMESPACE, ARGUMENTS]);

    // As Codex sends the next turn: the whole history, the call as it came.
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Filed #7.", VENDOR_MODEL_ID) });
    const next = await client.responses.create({
      model: "m",
      tools,
      input: [
        { role: "user", content: "File the crash." },
        { type: "function_call", call_id: call.call_id, name: call.name, namespace: NAMESPACE, arguments: ARGUMENTS },
        { type: "function_call_output", call_id: call.call_id, output: "#7" },
      ],
    });
    assert.equal(next.output_text, "Filed #7.");
    assert.deepEqual(upstreamCallNames(mock, 1), [UPSTREAM_NAME]);

    // Listed back as the client sent it.
    const listed = await client.responses.inputItems.list(next.id, { order: "asc" });
    const listedCall = listed.data.find((entry) => entry.type === "function_call");
    assert.ok(listedCall?.type === "function_call", JSON.stringify(listed.data));
    assert.deepEqual([listedCall.name, listedCall.namespace], ["create_issue", NAMESPACE]);

    // Continued from the kept streamed response, and by a reference to its call item.
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Done.", VENDOR_MODEL_ID) });
    await client.responses.create({
      model: "m",
      tools,
      previous_response_id: final.id,
      input: [{ type: "function_call_output", call_id: call.call_id, output: "#7" }],
    });
    assert.deepEqual(upstreamCallNames(mock, 2), [UPSTREAM_NAME]);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Done.", VENDOR_MODEL_ID) });
    await client.responses.create({
      model: "m",
      tools,
      input: [
        { role: "user", content: "File the crash." },
        { type: "item_reference", id: call.id ?? "" },
        { type: "function_call_output", call_id: call.call_id, output: "#7" },
      ],
    });
    assert.deepEqual(upstreamCallNames(mock, 3), [UPSTREAM_NAME]);
  });

  test("a malformed namespace is a 400 in the Responses error shape naming the field; nothing goes upstream", async (t) => {
    const { mock, gateway, client } = await oneProviderScene(t);
    const bad = [
      { tools: [{ type: "namespace", name: "crm", description: "CRM" }], param: "tools[0].tools" },
      { tools: [{ type: "namespace", description: "CRM", tools: [] }], param: "tools[0].name" },
      {
        tools: [{ type: "namespace", name: "crm", description: "CRM", tools: [{ type: "web_search" }] }],
        param: "tools[0].tools[0].type",
      },
      {
        tools: [
          {
            type: "namespace",
            name: "crm",
            description: "CRM",
            tools: [
              { type: "function", name: "find" },
              { type: "function", name: "find" },
            ],
          },
        ],
        param: "tools[0].tools[1].name",
      },
    ];
    for (const { tools: badTools, param } of bad) {
      await assert.rejects(
        client.responses.create({ model: "m", input: "hi", tools: badTools as OpenAI.Responses.Tool[] }),
        (error: unknown) => {
          assert.ok(error instanceof OpenAI.BadRequestError, String(error));
          assert.equal(error.type, "invalid_request_error");
          assert.equal(error.param, param);
          return true;
        },
      );
    }
    // Streamed, the refusal is still a plain 400 before any event.
    const raw = await send(gateway, "POST", "/v1/responses", {
      body: { model: "m", input: "hi", stream: true, tools: bad[0]?.tools },
    });
    assert.equal(raw.status, 400);
    assert.equal(errorOf(raw).param, "tools[0].tools");
    assert.equal(chatRequests(mock).length, 0);
  });

  test("the OpenAI Agents SDK's toolNamespace(): the namespaced tool runs, and its call goes back as the flat function", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    setTracingDisabled(true);
    setDefaultModelProvider(new OpenAIProvider({ apiKey: "x", baseURL: gateway.baseUrl }));
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: toolCallCompletion(VENDOR_MODEL_ID, [{ id: "call_c1", name: "crm__lookup", arguments: '{"id":"42"}' }]),
    });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Ada, customer 42.", VENDOR_MODEL_ID) });
    const looked: string[] = [];
    const agent = new Agent({
      name: "CRM agent",
      instructions: "Use the CRM tools.",
      model: "m",
      tools: toolNamespace({
        name: "crm",
        description: "Customer records.",
        tools: [
          agentTool({
            name: "lookup",
            description: "A customer by id.",
            parameters: z.object({ id: z.string() }),
            execute: async ({ id }) => {
              looked.push(id);
              return "Ada";
            },
          }),
        ],
      }),
    });
    const result = await run(agent, "Who is customer 42?");
    assert.equal(result.finalOutput, "Ada, customer 42.");
    assert.deepEqual(looked, ["42"], "the SDK found its namespaced tool by the call's name and namespace");
    assert.deepEqual(
      sentBody(mock, 0).tools?.map((tool) => tool.function.name),
      ["crm__lookup"],
    );
    assert.deepEqual(upstreamCallNames(mock, 1), ["crm__lookup"]);
    assert.deepEqual(sentBody(mock, 1).messages?.at(-1), { role: "tool", tool_call_id: "call_c1", content: "Ada" });
  });

  // Codex asks for these only of its built-in `openai` provider (docs/quickstart.md says to use a provider of one's
  // own, which Codex compacts with an ordinary request); pointed at the gateway anyway, it must get an answer it
  // reports ("Error running remote compact task"), not a hang or a half-understood request.
  test("OpenAI's server-side compaction as Codex asks for it is refused in the OpenAI error shape, before anything goes upstream", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const history = [
      { type: "message", role: "user", content: [{ type: "input_text", text: "Fix the bug." }] },
      { type: "function_call", call_id: "c1", name: "create_issue", namespace: NAMESPACE, arguments: ARGUMENTS },
      { type: "function_call_output", call_id: "c1", output: "#7" },
    ];
    // codex-rs before compaction v2: POST <base_url>/responses/compact, expecting `{output: [items]}`.
    const compact = await send(gateway, "POST", "/v1/responses/compact", {
      body: { model: "m", instructions: "You are Codex.", input: history, tools, parallel_tool_calls: false },
    });
    assert.equal(compact.status, 404);
    assert.equal(errorOf(compact).code, "unknown_url");
    // Compaction v2: the ordinary streamed request, its input ending in a `compaction_trigger` item.
    const trigger = await send(gateway, "POST", "/v1/responses", {
      body: { model: "m", stream: true, store: false, tools, input: [...history, { type: "compaction_trigger" }] },
    });
    assert.equal(trigger.status, 400);
    const error = errorOf(trigger);
    assert.equal(error.param, "input[3].type");
    assert.equal(error.code, "unsupported_value");
    assert.match(error.message, /compaction_trigger/);
    assert.equal(chatRequests(mock).length, 0);
  });
});
