// Tool names chat providers refuse other than by length (long-tool-names.test.ts), and a place long names went
// unrenamed:
// - names with characters outside OpenAI's `^[a-zA-Z0-9_-]{1,64}$` (MCP tools named `server.tool/name`, a tool
//   named with a space): sent as they came, OpenAI (and most providers copying its rule) refused every request
//   carrying one, on every door. They go upstream made valid (`_`) with a hash of the whole name, as long names do.
// - the deprecated `functions` / `function_call` fields old clients still send on the chat door: a long name there
//   went upstream as it came. It is renamed as in `tools`, and the legacy `function_call` answer mapped back.
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { FUNCTION_NAME, functionNameCheckingUpstream } from "../helpers/chat-tool-calls.ts";
import { CHAT_ROUTE, chatRequests, oneProviderScene, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import type { MockStep, MockUpstream, RecordedRequest } from "../helpers/mock-upstream.ts";

const DOTTED_NAME = "github.issues/create issue";
const LONG_NAME = "mcp__acme-internal-knowledge-base__search_confluence_pages_by_label_and_space_key";
const ARGUMENTS = '{"title":"Broken build"}';
const PARAMETERS = { type: "object", properties: { title: { type: "string" } } };

/** The name the upstream was offered in `tools` (or legacy `functions`): valid for OpenAI, and made from the client's. */
function assertOffered(mock: MockUpstream, clientName: string): string {
  const body = chatRequests(mock).at(-1)?.body as
    | { tools?: { function: { name: string } }[]; functions?: { name: string }[] }
    | undefined;
  const name = body?.tools?.[0]?.function.name ?? body?.functions?.[0]?.name ?? "";
  assert.match(name, FUNCTION_NAME);
  assert.match(name, /_[0-9a-f]{8}$/);
  assert.ok(clientName.replace(/[^a-zA-Z0-9_-]/g, "_").startsWith(name.slice(0, -9)), name);
  return name;
}

describe("tool names with characters providers refuse go upstream made valid, and come back as the client's", () => {
  for (const isStream of [false, true]) {
    const mode = isStream ? "streamed" : "JSON";
    test(`chat door, ${mode}: the openai SDK`, async (t) => {
      const { mock, client } = await oneProviderScene(t);
      mock.enqueue(CHAT_ROUTE, functionNameCheckingUpstream(VENDOR_MODEL_ID, isStream, ARGUMENTS));
      const request = {
        model: "m",
        messages: [
          { role: "user" as const, content: "File it." },
          {
            role: "assistant" as const,
            content: null,
            tool_calls: [{ id: "c0", type: "function" as const, function: { name: DOTTED_NAME, arguments: "{}" } }],
          },
          { role: "tool" as const, tool_call_id: "c0", content: "need a title" },
        ],
        tools: [{ type: "function" as const, function: { name: DOTTED_NAME, parameters: PARAMETERS } }],
      };
      const completion = isStream
        ? await client.chat.completions.stream(request).finalChatCompletion()
        : await client.chat.completions.create(request);
      const call = completion.choices[0]?.message.tool_calls?.[0];
      assert.deepEqual(call?.type === "function" ? [call.function.name, call.function.arguments] : [], [
        DOTTED_NAME,
        ARGUMENTS,
      ]);
      const offered = assertOffered(mock, DOTTED_NAME);
      const sent = chatRequests(mock)[0]?.body as
        | { messages: { tool_calls?: { function: { name: string } }[] }[] }
        | undefined;
      const history = sent?.messages[1]?.tool_calls?.[0]?.function.name;
      assert.equal(history, offered, "the history's call: the same function");
    });

    test(`Responses door, ${mode}: the openai SDK`, async (t) => {
      const { mock, client } = await oneProviderScene(t);
      mock.enqueue(CHAT_ROUTE, functionNameCheckingUpstream(VENDOR_MODEL_ID, isStream, ARGUMENTS));
      const request = {
        model: "m",
        input: "File it.",
        tools: [{ type: "function" as const, name: DOTTED_NAME, parameters: PARAMETERS, strict: false }],
        tool_choice: { type: "function" as const, name: DOTTED_NAME },
      };
      const response = isStream
        ? await client.responses.stream(request).finalResponse()
        : await client.responses.create(request);
      assert.deepEqual(
        response.output.flatMap((item) => (item.type === "function_call" ? [[item.name, item.arguments]] : [])),
        [[DOTTED_NAME, ARGUMENTS]],
      );
      const offered = assertOffered(mock, DOTTED_NAME);
      const sent = chatRequests(mock)[0]?.body as { tool_choice: { function: { name: string } } } | undefined;
      assert.equal(sent?.tool_choice.function.name, offered);
    });

    test(`Messages door, ${mode}: the Anthropic SDK`, async (t) => {
      const { mock, gateway } = await oneProviderScene(t);
      mock.enqueue(CHAT_ROUTE, functionNameCheckingUpstream(VENDOR_MODEL_ID, isStream, ARGUMENTS));
      const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
      const request = {
        model: "m",
        max_tokens: 200,
        tools: [{ name: DOTTED_NAME, input_schema: { type: "object" as const, properties: PARAMETERS.properties } }],
        messages: [{ role: "user" as const, content: "File it." }],
      };
      const message = isStream
        ? await client.messages.stream(request).finalMessage()
        : await client.messages.create(request);
      assert.deepEqual(
        message.content.flatMap((block) => (block.type === "tool_use" ? [[block.name, block.input]] : [])),
        [[DOTTED_NAME, { title: "Broken build" }]],
      );
      assertOffered(mock, DOTTED_NAME);
    });
  }
});

/**
 * An upstream that checks the legacy `functions`, `function_call` and the history's `function_call` names as OpenAI
 * does and answers with a legacy `function_call` of the first function it got, as JSON or streamed.
 */
function legacyFunctionUpstream(isStream: boolean): MockStep {
  return {
    kind: "handler",
    handle: (request: RecordedRequest, response: ServerResponse) => {
      const body = request.body as {
        functions?: { name: string }[];
        function_call?: { name?: string } | string;
        messages: { function_call?: { name: string } }[];
      };
      const names = [
        ...(body.functions ?? []).map((fn) => fn.name),
        ...(typeof body.function_call === "object" && body.function_call.name !== undefined
          ? [body.function_call.name]
          : []),
        ...body.messages.flatMap((message) =>
          message.function_call === undefined ? [] : [message.function_call.name],
        ),
      ];
      const invalid = names.find((name) => !FUNCTION_NAME.test(name));
      if (invalid !== undefined) {
        response.writeHead(400, { "content-type": "application/json" });
        const message = `Invalid 'functions[0].name': string too long. Expected a string with maximum length 64, but got a string with length ${invalid.length} instead.`;
        response.end(
          JSON.stringify({ error: { message, type: "invalid_request_error", code: "string_above_max_length" } }),
        );
        return;
      }
      const name = names[0] ?? "";
      const base = { id: "chatcmpl-legacy", created: 1767225600, model: VENDOR_MODEL_ID };
      if (!isStream) {
        response.writeHead(200, { "content-type": "application/json" });
        response.end(
          JSON.stringify({
            ...base,
            object: "chat.completion",
            choices: [
              {
                index: 0,
                message: { role: "assistant", content: null, function_call: { name, arguments: ARGUMENTS } },
                finish_reason: "function_call",
              },
            ],
            usage: { prompt_tokens: 20, completion_tokens: 8, total_tokens: 28 },
          }),
        );
        return;
      }
      const chunk = (delta: unknown, finishReason: string | null = null) =>
        `data: ${JSON.stringify({ ...base, object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason: finishReason }] })}\n\n`;
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(chunk({ role: "assistant", content: null, function_call: { name, arguments: "" } }));
      response.write(chunk({ function_call: { arguments: ARGUMENTS } }));
      response.write(chunk({}, "function_call"));
      response.end("data: [DONE]\n\n");
    },
  };
}

describe("chat door: the deprecated functions / function_call with a long name", () => {
  for (const isStream of [false, true]) {
    test(`${isStream ? "streamed" : "JSON"}: renamed upstream, the legacy call back under the client's name`, async (t) => {
      const { mock, client } = await oneProviderScene(t);
      mock.enqueue(CHAT_ROUTE, legacyFunctionUpstream(isStream));
      const request = {
        model: "m",
        messages: [
          { role: "user" as const, content: "Find the runbooks." },
          { role: "assistant" as const, content: null, function_call: { name: LONG_NAME, arguments: "{}" } },
          { role: "function" as const, name: LONG_NAME, content: "no pages" },
        ],
        functions: [{ name: LONG_NAME, parameters: PARAMETERS }],
        function_call: { name: LONG_NAME },
      };
      const completion = isStream
        ? await client.chat.completions.stream(request).finalChatCompletion()
        : await client.chat.completions.create(request);
      assert.deepEqual(completion.choices[0]?.message.function_call, { name: LONG_NAME, arguments: ARGUMENTS });
      const offered = assertOffered(mock, LONG_NAME);
      const sent = chatRequests(mock)[0]?.body as {
        function_call: { name: string };
        messages: { function_call?: { name: string }; name?: string }[];
      };
      assert.equal(sent.function_call.name, offered);
      assert.equal(sent.messages[1]?.function_call?.name, offered);
      assert.equal(sent.messages[2]?.name, offered, "the legacy result names the same function");
    });
  }
});

/**
 * An upstream that refuses a name OpenAI refuses, or two tools offered under one name, and answers with a call of
 * the first tool it got (`function` or `custom`, as that tool is).
 */
function distinctNamesUpstream(): MockStep {
  return {
    kind: "handler",
    handle: (request: RecordedRequest, response: ServerResponse) => {
      const tools = (
        request.body as { tools: { type: string; function?: { name: string }; custom?: { name: string } }[] }
      ).tools;
      const names = tools.map((tool) => tool.function?.name ?? tool.custom?.name ?? "");
      const refusal = names.find((name) => !FUNCTION_NAME.test(name))
        ? "Invalid 'tools[0].function.name': string does not match pattern."
        : new Set(names).size < names.length
          ? "Tool names must be unique."
          : undefined;
      if (refusal !== undefined) {
        response.writeHead(400, { "content-type": "application/json" });
        response.end(JSON.stringify({ error: { message: refusal, type: "invalid_request_error" } }));
        return;
      }
      const first = tools[0];
      const call =
        first?.type === "custom"
          ? { id: "call_1", type: "custom", custom: { name: names[0], input: "*** Begin Patch" } }
          : { id: "call_1", type: "function", function: { name: names[0], arguments: ARGUMENTS } };
      response.writeHead(200, { "content-type": "application/json" });
      response.end(
        JSON.stringify({
          id: "chatcmpl-names",
          object: "chat.completion",
          created: 1767225600,
          model: VENDOR_MODEL_ID,
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: null, tool_calls: [call] },
              finish_reason: "tool_calls",
            },
          ],
          usage: { prompt_tokens: 20, completion_tokens: 8, total_tokens: 28 },
        }),
      );
    },
  };
}

async function chatCall(
  baseUrl: string,
  body: unknown,
): Promise<{ status: number; call: Record<string, { name?: string }> | undefined }> {
  const response = await fetch(`${baseUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = (await response.json()) as {
    choices?: { message: { tool_calls?: Record<string, { name?: string }>[] } }[];
  };
  return { status: response.status, call: answer.choices?.[0]?.message.tool_calls?.[0] };
}

test("chat door: a tool named like another's renamed form; both go upstream under their own names", async (t) => {
  // `server.tool` goes upstream as `server_tool_<hash>`; a client that also offers a tool literally named that (copied
  // from an answer, a log) had two tools under one name: refused, or the model's call ran the wrong one.
  const { mock, gateway } = await oneProviderScene(t);
  const { upstreamToolName } = await import("../../src/protocols/long-tool-names.ts");
  const literal = upstreamToolName("server.tool");
  const tool = (name: string) => ({ type: "function", function: { name, parameters: PARAMETERS } });
  mock.enqueue(CHAT_ROUTE, distinctNamesUpstream());
  const { status, call } = await chatCall(gateway.baseUrl, {
    model: "m",
    messages: [{ role: "user", content: "Use it." }],
    tools: [tool("server.tool"), tool(literal)],
  });
  assert.equal(status, 200);
  assert.equal(call?.function?.name, "server.tool", "the call of the renamed tool maps back to it");
  const sent = (chatRequests(mock)[0]?.body as { tools: { function: { name: string } }[] } | undefined)?.tools ?? [];
  assert.equal(sent[1]?.function.name, literal, "the literal name goes as it came");
  assert.notEqual(sent[0]?.function.name, literal);
});

test("chat door: custom (freeform) tools with names providers refuse are renamed, their calls mapped back", async (t) => {
  const { mock, gateway } = await oneProviderScene(t);
  mock.enqueue(CHAT_ROUTE, distinctNamesUpstream());
  const name = "apply.patch/v2";
  const { status, call } = await chatCall(gateway.baseUrl, {
    model: "m",
    messages: [{ role: "user", content: "Patch it." }],
    tools: [{ type: "custom", custom: { name, description: "Apply a patch", format: { type: "text" } } }],
  });
  assert.equal(status, 200);
  assert.equal(call?.custom?.name, name);
  const sent = (chatRequests(mock)[0]?.body as { tools: { custom: { name: string } }[] } | undefined)?.tools ?? [];
  assert.match(sent[0]?.custom.name ?? "", /^apply_patch_v2_[0-9a-f]{8}$/);
});

test("chat door, streamed: a custom (freeform) tool's call stays a custom call, with no function arguments added", async (t) => {
  // ToolCallDeltas gave every call without `function.arguments` text `{}` at the finish, the custom call included: the
  // client got `{custom: {name, input}}` and then `{function: {arguments: "{}"}}` at its index, which an accumulator
  // merges into a call of both kinds (or a function call of no name).
  const { mock, gateway } = await oneProviderScene(t);
  const name = "apply.patch/v2";
  mock.enqueue(CHAT_ROUTE, {
    kind: "handler",
    handle: (request: RecordedRequest, response: ServerResponse) => {
      const upstreamName = (request.body as { tools: { custom: { name: string } }[] }).tools[0]?.custom.name;
      const chunk = (delta: unknown, finish: string | null) => ({
        id: "chatcmpl-custom",
        object: "chat.completion.chunk",
        created: 1767225600,
        model: VENDOR_MODEL_ID,
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
      const call = { index: 0, id: "call_1", type: "custom", custom: { name: upstreamName, input: "" } };
      const events = [
        chunk({ role: "assistant", content: null, tool_calls: [call] }, null),
        chunk({ tool_calls: [{ index: 0, custom: { input: "*** Begin Patch" } }] }, null),
        chunk({}, "tool_calls"),
      ];
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.end(`${events.map((event) => `data: ${JSON.stringify(event)}\n\n`).join("")}data: [DONE]\n\n`);
    },
  });
  const response = await fetch(`${gateway.baseUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "Patch it." }],
      tools: [{ type: "custom", custom: { name, format: { type: "text" } } }],
    }),
  });
  assert.equal(response.status, 200);
  const deltas = (await response.text())
    .split("\n")
    .filter((line) => line.startsWith("data: {"))
    .flatMap((line) => {
      const chunk = JSON.parse(line.slice(6)) as { choices?: { delta?: { tool_calls?: Record<string, unknown>[] } }[] };
      return chunk.choices?.[0]?.delta?.tool_calls ?? [];
    });
  assert.ok(deltas.length > 0, "the call was streamed");
  assert.deepEqual(
    deltas.filter((delta) => "function" in delta),
    [],
    "no delta of the custom call carries `function`",
  );
  assert.equal((deltas[0]?.custom as { name?: string } | undefined)?.name, name, "the call's name maps back");
  assert.equal(deltas[0]?.type, "custom");
  const input = deltas.map((delta) => (delta.custom as { input?: string } | undefined)?.input ?? "").join("");
  assert.equal(input, "*** Begin Patch");
});

test("responses door: a top-level tool named like another's renamed form; both go upstream under their own names", async (t) => {
  // The translated Responses door named its top-level tools by upstreamToolName alone: `server.tool` and a tool
  // literally named `server_tool_<hash>` went upstream under one name (refused, or the model's call ran the wrong one).
  const { mock, gateway } = await oneProviderScene(t);
  const { upstreamToolName } = await import("../../src/protocols/long-tool-names.ts");
  const literal = upstreamToolName("server.tool");
  mock.enqueue(CHAT_ROUTE, distinctNamesUpstream());
  const response = await fetch(`${gateway.baseUrl}/responses`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "m",
      input: "Use it.",
      tools: [
        { type: "function", name: "server.tool", parameters: PARAMETERS },
        { type: "function", name: literal, parameters: PARAMETERS },
      ],
    }),
  });
  assert.equal(response.status, 200);
  const answer = (await response.json()) as { output: { type: string; name?: string }[] };
  const call = answer.output.find((item) => item.type === "function_call");
  assert.equal(call?.name, "server.tool", "the call of the renamed tool maps back to it");
  const sent = (chatRequests(mock)[0]?.body as { tools: { function: { name: string } }[] } | undefined)?.tools ?? [];
  assert.equal(sent[1]?.function.name, literal, "the literal name goes as it came");
  assert.notEqual(sent[0]?.function.name, literal);
});
