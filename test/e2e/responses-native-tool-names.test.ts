// Tool names over 64 characters on a `responses_api: native` provider: OpenAI's Responses API refuses them ("Must
// be a-z, A-Z, 0-9, or contain underscores and dashes, with a maximum length of 64"), and the native body went with
// them as the client sent them, so every request of an agent with such an MCP tool failed there. They go shortened
// as on translated candidates (long-tool-names.test.ts), and the answer comes back under the client's names: JSON,
// streamed events, the kept response, its input items, and a continuation by `previous_response_id`.
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { describe, test } from "node:test";
import type { MockStep, MockUpstream, RecordedRequest } from "../helpers/mock-upstream.ts";
import { MODEL, startTwoProviders } from "../helpers/two-providers.ts";

const RESPONSES_ROUTE = "POST /v1/responses";
const NATIVE_MODEL = "native-model-2026";
// 81 characters; a namespace member of 70.
const LONG_NAME = "mcp__acme-internal-knowledge-base__search_confluence_pages_by_label_and_space_key";
const LONG_MEMBER = "list_every_open_issue_assigned_to_the_current_user_in_all_repositories";
const ARGUMENTS = '{"label":"runbook"}';
const PARAMETERS = { type: "object", properties: { label: { type: "string" } } };
/** OpenAI's rule for a function's name. */
const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

interface SentTool {
  type: string;
  name?: string;
  tools?: { name: string }[];
}

/** Every function name the native body holds: tools, namespaces' members, the tool choice, the input's calls. */
function sentNames(body: Record<string, unknown>): string[] {
  const tools = (body.tools ?? []) as SentTool[];
  const choice = body.tool_choice as { name?: string } | undefined;
  const input = Array.isArray(body.input) ? (body.input as { type?: string; name?: string }[]) : [];
  return [
    ...tools.flatMap((tool) => (tool.type === "namespace" ? (tool.tools ?? []).map((member) => member.name) : [])),
    ...tools.flatMap((tool) => (tool.name !== undefined && tool.type !== "namespace" ? [tool.name] : [])),
    ...(choice?.name === undefined ? [] : [choice.name]),
    ...input.flatMap((item) => (item.type === "function_call" && item.name !== undefined ? [item.name] : [])),
  ];
}

function functionCall(name: string, status: string, args: string) {
  return { id: "fc_upstream_1", type: "function_call", status, call_id: "call_native_1", name, arguments: args };
}

function response(body: Record<string, unknown>, status: string, output: unknown[]) {
  return {
    id: "resp_upstream_1",
    object: "response",
    created_at: 1767225600,
    status,
    error: null,
    incomplete_details: null,
    model: NATIVE_MODEL,
    output,
    tools: body.tools,
    tool_choice: body.tool_choice ?? "auto",
    parallel_tool_calls: true,
    usage: status === "completed" ? { input_tokens: 30, output_tokens: 9, total_tokens: 39 } : null,
    store: false,
    previous_response_id: null,
    metadata: {},
  };
}

/**
 * A native provider checking every function name as OpenAI does (a 400 for a longer or otherwise invalid one) and
 * calling the first tool it was offered by the name it got, as JSON or streamed.
 */
function nameCheckingNative(isStream: boolean): MockStep {
  return {
    kind: "handler",
    handle: (request: RecordedRequest, answer: ServerResponse) => {
      const body = request.body as Record<string, unknown>;
      const invalid = sentNames(body).find((name) => !FUNCTION_NAME.test(name));
      if (invalid !== undefined) {
        answer.writeHead(400, { "content-type": "application/json" });
        const message = `Invalid 'tools[0].name': string too long. Expected a string with maximum length 64, but got a string with length ${invalid.length} instead.`;
        answer.end(
          JSON.stringify({ error: { message, type: "invalid_request_error", code: "string_above_max_length" } }),
        );
        return;
      }
      const name = ((body.tools ?? []) as SentTool[])[0]?.name ?? "";
      const done = functionCall(name, "completed", ARGUMENTS);
      if (!isStream) {
        answer.writeHead(200, { "content-type": "application/json" });
        answer.end(JSON.stringify(response(body, "completed", [done])));
        return;
      }
      const at = { item_id: "fc_upstream_1", output_index: 0 };
      const events: Record<string, unknown>[] = [
        { type: "response.created", response: response(body, "in_progress", []) },
        { type: "response.in_progress", response: response(body, "in_progress", []) },
        { type: "response.output_item.added", output_index: 0, item: functionCall(name, "in_progress", "") },
        { type: "response.function_call_arguments.delta", ...at, delta: ARGUMENTS.slice(0, 9) },
        { type: "response.function_call_arguments.delta", ...at, delta: ARGUMENTS.slice(9) },
        { type: "response.function_call_arguments.done", ...at, name, arguments: ARGUMENTS },
        { type: "response.output_item.done", output_index: 0, item: done },
        { type: "response.completed", response: response(body, "completed", [done]) },
      ];
      answer.writeHead(200, { "content-type": "text/event-stream" });
      for (const [index, event] of events.entries()) {
        answer.write(`event: ${String(event.type)}\ndata: ${JSON.stringify({ ...event, sequence_number: index })}\n\n`);
      }
      answer.end();
    },
  };
}

function nativeBodies(upstream: MockUpstream): Record<string, unknown>[] {
  return upstream.requests
    .filter((request) => request.path === "/v1/responses")
    .map((request) => request.body as Record<string, unknown>);
}

const request = {
  model: MODEL,
  input: [
    { role: "user" as const, content: "Find the runbooks." },
    { type: "function_call" as const, call_id: "call_0", name: LONG_NAME, arguments: '{"label":"ops"}' },
    { type: "function_call_output" as const, call_id: "call_0", output: "no pages" },
  ],
  tools: [
    { type: "function" as const, name: LONG_NAME, parameters: PARAMETERS, strict: false },
    {
      type: "namespace" as const,
      name: "mcp__github__",
      description: "GitHub",
      tools: [{ type: "function" as const, name: LONG_MEMBER, parameters: { type: "object", properties: {} } }],
    },
  ],
  tool_choice: { type: "function" as const, name: LONG_NAME },
};

/** The native body went with every name valid, the tool, its choice and the history's call of it alike. */
function assertShortened(body: Record<string, unknown> | undefined): string {
  assert.ok(body !== undefined, "the native provider was called");
  const names = sentNames(body);
  for (const name of names) assert.match(name, FUNCTION_NAME);
  const tool = ((body.tools ?? []) as SentTool[])[0]?.name ?? "";
  assert.match(tool, /^mcp__acme-internal-knowledge-base__search_confluence_pa_[0-9a-f]{8}$/);
  if (body.tool_choice !== undefined) assert.equal((body.tool_choice as { name: string }).name, tool);
  const calls = (body.input as { type?: string; name?: string }[]).filter((item) => item.type === "function_call");
  assert.ok(calls.length > 0 && calls.every((call) => call.name === tool), JSON.stringify(calls));
  return tool;
}

describe("native Responses providers: tool names over 64 characters", () => {
  test("JSON: shortened upstream; the answer, the kept response, its input items and a continuation under the client's names", async (t) => {
    const { primary, client } = await startTwoProviders(t, { primary: { responses_api: "native" } });
    primary.enqueue(RESPONSES_ROUTE, nameCheckingNative(false));
    const answer = await client.responses.create(request);
    const calls = answer.output.flatMap((item) => (item.type === "function_call" ? [item] : []));
    assert.deepEqual(
      calls.map((call) => [call.call_id, call.name, call.arguments]),
      [["call_native_1", LONG_NAME, ARGUMENTS]],
    );
    assert.equal((answer.tools[0] as { name?: string }).name, LONG_NAME, "the echoed tools are the client's");
    assert.deepEqual(
      (answer.tools[1] as { tools?: { name: string }[] }).tools?.map((member) => member.name),
      [LONG_MEMBER],
    );
    assert.equal((answer.tool_choice as { name?: string }).name, LONG_NAME);
    const shortened = assertShortened(nativeBodies(primary)[0]);

    const kept = await client.responses.retrieve(answer.id);
    assert.deepEqual(
      kept.output.flatMap((item) => (item.type === "function_call" ? [item.name] : [])),
      [LONG_NAME],
    );
    const items = await client.responses.inputItems.list(answer.id);
    assert.deepEqual(
      items.data.flatMap((item) => (item.type === "function_call" ? [item.name] : [])),
      [LONG_NAME],
    );

    primary.enqueue(RESPONSES_ROUTE, nameCheckingNative(false));
    const next = await client.responses.create({
      model: MODEL,
      previous_response_id: answer.id,
      input: [{ type: "function_call_output", call_id: "call_native_1", output: "3 pages" }],
      tools: request.tools,
    });
    assert.deepEqual(
      next.output.flatMap((item) => (item.type === "function_call" ? [item.name] : [])),
      [LONG_NAME],
    );
    const continued = nativeBodies(primary)[1];
    assert.ok(continued !== undefined);
    assert.equal(assertShortened(continued), shortened, "the same name on every turn");
    assert.equal(
      (continued.input as { type?: string }[]).filter((item) => item.type === "function_call").length,
      2,
      "the kept calls went back shortened",
    );
  });

  test("streamed: the openai SDK's events and final response name the client's tool", async (t) => {
    const { primary, client } = await startTwoProviders(t, { primary: { responses_api: "native" } });
    primary.enqueue(RESPONSES_ROUTE, nameCheckingNative(true));
    const stream = client.responses.stream(request);
    const named: [string, string][] = [];
    stream.on("response.output_item.added", (event) => {
      if (event.item.type === "function_call") named.push([event.type, event.item.name]);
    });
    stream.on("response.function_call_arguments.done", (event) => named.push([event.type, event.name]));
    stream.on("response.output_item.done", (event) => {
      if (event.item.type === "function_call") named.push([event.type, event.item.name]);
    });
    stream.on("response.created", (event) =>
      named.push([event.type, (event.response.tools[0] as { name?: string }).name ?? ""]),
    );
    const final = await stream.finalResponse();
    assert.deepEqual(named, [
      ["response.created", LONG_NAME],
      ["response.output_item.added", LONG_NAME],
      ["response.function_call_arguments.done", LONG_NAME],
      ["response.output_item.done", LONG_NAME],
    ]);
    assert.deepEqual(
      final.output.flatMap((item) => (item.type === "function_call" ? [[item.name, item.arguments]] : [])),
      [[LONG_NAME, ARGUMENTS]],
    );
    assertShortened(nativeBodies(primary)[0]);
    const kept = await client.responses.retrieve(final.id);
    assert.deepEqual(
      kept.output.flatMap((item) => (item.type === "function_call" ? [item.name] : [])),
      [LONG_NAME],
    );
  });
});

/** Names of the functions a native body's `tool_search_output` items loaded (top-level, or a namespace's members). */
function loadedNames(body: Record<string, unknown>): string[] {
  const input = Array.isArray(body.input) ? (body.input as { type?: string; tools?: SentTool[] }[]) : [];
  return input.flatMap((item) =>
    item.type === "tool_search_output"
      ? (item.tools ?? []).flatMap((tool) =>
          tool.type === "namespace" ? (tool.tools ?? []).map((member) => member.name) : [tool.name ?? ""],
        )
      : [],
  );
}

describe("native Responses providers: tools a client-run tool_search loaded", () => {
  // Codex keeps its MCP tools behind its own `tool_search`: they reach the model in `tool_search_output` items, not
  // in `tools`. Their calls in the input were renamed while the loaded tools kept their long names: OpenAI refused
  // the body, and a provider taking long names was sent calls of functions it was never given.
  test("their names go renamed as their calls do, and the model's call of one comes back under the client's name", async (t) => {
    const { primary, client } = await startTwoProviders(t, { primary: { responses_api: "native" } });
    primary.enqueue(RESPONSES_ROUTE, {
      kind: "handler",
      handle: (received: RecordedRequest, answer: ServerResponse) => {
        const body = received.body as Record<string, unknown>;
        const loaded = loadedNames(body);
        const calls = (body.input as { type?: string; name?: string }[]).flatMap((item) =>
          item.type === "function_call" ? [item.name ?? ""] : [],
        );
        const invalid = [...sentNames(body), ...loaded].find((name) => !FUNCTION_NAME.test(name));
        const unknown = calls.find((name) => !loaded.includes(name));
        if (invalid !== undefined || unknown !== undefined) {
          answer.writeHead(400, { "content-type": "application/json" });
          const message = `Invalid function name (${invalid ?? ""}) or a call of no offered function (${unknown ?? ""}).`;
          answer.end(JSON.stringify({ error: { message, type: "invalid_request_error", code: "invalid_value" } }));
          return;
        }
        const call = { ...functionCall(loaded[0] ?? "", "completed", ARGUMENTS), namespace: "mcp__wiki__" };
        answer.writeHead(200, { "content-type": "application/json" });
        answer.end(JSON.stringify(response(body, "completed", [call])));
      },
    });
    const answer = await client.responses.create({
      model: MODEL,
      tools: [{ type: "tool_search", execution: "client", description: "Finds MCP tools." }],
      input: [
        { role: "user", content: "Find the runbooks." },
        { type: "tool_search_call", call_id: "ts_0", execution: "client", arguments: { query: "wiki" } },
        {
          type: "tool_search_output",
          call_id: "ts_0",
          execution: "client",
          tools: [
            {
              type: "namespace",
              name: "mcp__wiki__",
              description: "Wiki",
              tools: [{ type: "function", name: LONG_MEMBER, parameters: PARAMETERS, strict: false }],
            },
          ],
        },
        { type: "function_call", call_id: "call_0", namespace: "mcp__wiki__", name: LONG_MEMBER, arguments: "{}" },
        { type: "function_call_output", call_id: "call_0", output: "no pages" },
      ],
    });
    const calls = answer.output.flatMap((item) => (item.type === "function_call" ? [item] : []));
    assert.deepEqual(
      calls.map((call) => [call.namespace, call.name, call.arguments]),
      [["mcp__wiki__", LONG_MEMBER, ARGUMENTS]],
    );
    const body = nativeBodies(primary)[0];
    assert.ok(body !== undefined);
    const [loaded] = loadedNames(body);
    assert.match(loaded ?? "", FUNCTION_NAME);
    assert.notEqual(loaded, LONG_MEMBER);
  });
});

/** The function names a `tool_choice` may give on OpenAI: a top-level function's, or a member's `<namespace>.<name>`. */
function choosableNames(body: Record<string, unknown>): string[] {
  return ((body.tools ?? []) as SentTool[]).flatMap((tool) =>
    tool.type === "namespace"
      ? (tool.tools ?? []).map((member) => `${tool.name ?? ""}.${member.name}`)
      : tool.type === "function" && tool.name !== undefined
        ? [tool.name]
        : [],
  );
}

/**
 * A native provider that takes a namespace member's qualified name in `tool_choice` (as OpenAI does: the Agents SDK
 * sends `{type: "function", name: "<namespace>.<name>"}` for a `toolNamespace()` member) and refuses any other name
 * no tool has; it answers with a call of the chosen member.
 */
function qualifiedChoiceNative(): MockStep {
  return {
    kind: "handler",
    handle: (received: RecordedRequest, answer: ServerResponse) => {
      const body = received.body as Record<string, unknown>;
      const chosen = (body.tool_choice as { name?: string } | undefined)?.name ?? "";
      // The choice is checked against the tools' names below, qualified or not.
      const invalid = sentNames({ ...body, tool_choice: undefined }).find((name) => !FUNCTION_NAME.test(name));
      if (invalid !== undefined || !choosableNames(body).includes(chosen)) {
        answer.writeHead(400, { "content-type": "application/json" });
        const message = `Tool choice '${chosen}' not found in 'tools' parameter, or an invalid function name (${invalid ?? ""}).`;
        answer.end(JSON.stringify({ error: { message, type: "invalid_request_error", param: "tool_choice" } }));
        return;
      }
      const dot = chosen.lastIndexOf(".");
      const call = { ...functionCall(chosen.slice(dot + 1), "completed", "{}"), namespace: chosen.slice(0, dot) };
      answer.writeHead(200, { "content-type": "application/json" });
      answer.end(JSON.stringify(response(body, "completed", [call])));
    },
  };
}

describe("native Responses providers: a tool_choice naming a namespace's member as `<namespace>.<name>`", () => {
  for (const member of ["lookup_contact", LONG_MEMBER]) {
    const kind = member === LONG_MEMBER ? "a member renamed upstream" : "a member whose name goes as it is";
    test(`${kind}: the choice names it as the provider was given it, and the echoed choice is the client's`, async (t) => {
      const { primary, client } = await startTwoProviders(t, { primary: { responses_api: "native" } });
      primary.enqueue(RESPONSES_ROUTE, qualifiedChoiceNative());
      const answer = await client.responses.create({
        model: MODEL,
        input: "Look up Ada.",
        tools: [
          {
            type: "namespace",
            name: "crm",
            description: "CRM",
            tools: [{ type: "function", name: member, parameters: PARAMETERS, strict: false }],
          },
        ],
        tool_choice: { type: "function", name: `crm.${member}` },
      });
      const calls = answer.output.flatMap((item) => (item.type === "function_call" ? [item] : []));
      assert.deepEqual(
        calls.map((call) => [call.namespace, call.name]),
        [["crm", member]],
      );
      assert.equal((answer.tool_choice as { name?: string }).name, `crm.${member}`);
      const body = nativeBodies(primary)[0];
      assert.ok(body !== undefined);
      const chosen = (body.tool_choice as { name?: string }).name;
      if (member === LONG_MEMBER) assert.match(chosen ?? "", /^crm\.[a-zA-Z0-9_-]{1,64}$/);
      else assert.equal(chosen, "crm.lookup_contact", "a body with nothing to rename goes as it came");
    });
  }
});
