// What the real client libraries do with answers that are valid for the provider but not what OpenAI or Anthropic
// would send, found by a conformance sweep of the front doors (docs/protocols.md): each test runs a real client
// against the gateway and a scripted Chat Completions upstream, and fails on the gateway before its fix.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { Agent, tool as agentTool, OpenAIProvider, Runner, setTracingDisabled } from "@openai/agents";
import { z } from "zod";
import { FUNCTION_NAME, functionNameCheckingUpstream } from "../helpers/chat-tool-calls.ts";
import { CHAT_ROUTE, chatRequests, oneProviderScene, openAiClient, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import { chatCompletion, chatStream, type MockStep, type SseScript } from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = VENDOR_MODEL_ID;

function chunk(delta: unknown, finishReason: string | null = null): SseScript {
  return {
    data: {
      id: "chatcmpl-noargs",
      object: "chat.completion.chunk",
      created: 1767225600,
      model: UPSTREAM_ID,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    },
  };
}

/**
 * A call of `now` (a function without parameters) as some providers send it: streamed with no `arguments` at all,
 * or as JSON with `arguments: ""`.
 */
function callWithoutArguments(isStream: boolean): MockStep {
  if (isStream) {
    const opening = { index: 0, id: "call_now", type: "function", function: { name: "now" } };
    return {
      kind: "sse",
      events: [chunk({ role: "assistant", content: null }), chunk({ tool_calls: [opening] }), chunk({}, "tool_calls")],
    };
  }
  const call = { id: "call_now", type: "function", function: { name: "now", arguments: "" } };
  const completion = chatCompletion("", UPSTREAM_ID);
  const choice = { index: 0, message: { role: "assistant", content: null, tool_calls: [call] } };
  return {
    kind: "json",
    body: { ...completion, choices: [{ ...choice, logprobs: null, finish_reason: "tool_calls" }] },
  };
}

describe("a call of a function without parameters that the provider sent without arguments", () => {
  const cases = [
    { door: "Responses", useResponses: true, isStream: true },
    { door: "Responses", useResponses: true, isStream: false },
    { door: "Chat Completions", useResponses: false, isStream: true },
    { door: "Chat Completions", useResponses: false, isStream: false },
  ];
  for (const { door, useResponses, isStream } of cases) {
    test(`Agents SDK over ${door}${isStream ? ", streamed" : ""}: the tool runs with {} (it was told its arguments were invalid JSON)`, async (t) => {
      const { mock, gateway } = await oneProviderScene(t);
      setTracingDisabled(true);
      const runner = new Runner({
        modelProvider: new OpenAIProvider({ apiKey: "x", baseURL: gateway.baseUrl, useResponses }),
      });
      const ran: unknown[] = [];
      const now = agentTool({
        name: "now",
        description: "The time",
        parameters: z.object({}),
        execute: async (input) => {
          ran.push(input);
          return "noon";
        },
      });
      const agent = new Agent({ name: "Clock", instructions: "Tell the time.", model: "m", tools: [now] });
      mock.enqueue(CHAT_ROUTE, callWithoutArguments(isStream));
      mock.enqueue(
        CHAT_ROUTE,
        isStream
          ? { kind: "sse", events: chatStream(["It is noon."], UPSTREAM_ID, { usage: true }) }
          : { kind: "json", body: chatCompletion("It is noon.", UPSTREAM_ID) },
      );
      let finalOutput: unknown;
      if (isStream) {
        const result = await runner.run(agent, "What time is it?", { stream: true });
        for await (const _event of result) {
          // Drained.
        }
        await result.completed;
        finalOutput = result.finalOutput;
      } else {
        finalOutput = (await runner.run(agent, "What time is it?")).finalOutput;
      }
      assert.equal(finalOutput, "It is noon.");
      assert.deepEqual(ran, [{}]);
      const second = chatRequests(mock)[1]?.body as {
        messages: { role: string; content?: unknown; tool_calls?: unknown }[];
      };
      const [assistant, toolMessage] = second.messages.slice(-2);
      assert.deepEqual(assistant?.tool_calls, [
        { id: "call_now", type: "function", function: { name: "now", arguments: "{}" } },
      ]);
      assert.deepEqual(toolMessage, { role: "tool", tool_call_id: "call_now", content: "noon" });
    });
  }
});

describe("Anthropic SDK: document blocks", () => {
  test("a document of content blocks (text and an image) reaches the upstream as that content (it was a 400)", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Two chunks.", UPSTREAM_ID) });
    const message = await client.messages.create({
      model: "m",
      max_tokens: 50,
      messages: [
        {
          role: "user",
          content: [
            {
              type: "document",
              source: {
                type: "content",
                content: [
                  { type: "text", text: "First chunk." },
                  { type: "image", source: { type: "url", url: "https://example.com/chart.png" } },
                ],
              },
              title: "Notes",
              citations: { enabled: true },
            },
          ],
        },
        { role: "assistant", content: "Read." },
        {
          role: "user",
          content: [
            { type: "document", source: { type: "content", content: "A whole text." } },
            { type: "text", text: "Summarize both." },
          ],
        },
      ],
    });
    assert.equal(message.content[0]?.type === "text" ? message.content[0].text : "", "Two chunks.");
    assert.deepEqual(chatRequests(mock)[0]?.body, {
      model: UPSTREAM_ID,
      max_tokens: 50,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "First chunk." },
            { type: "image_url", image_url: { url: "https://example.com/chart.png" } },
          ],
        },
        { role: "assistant", content: "Read." },
        { role: "user", content: "A whole text.\nSummarize both." },
      ],
    });
  });

  test("a PDF by URL or by file id is a 400 saying why and what to send; nothing goes upstream", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const sources = [
      { source: { type: "url", url: "https://example.com/paper.pdf" }, why: /does not fetch documents/ },
      { source: { type: "file", file_id: "file_011" }, why: /keeps no uploaded files/ },
    ] as const;
    for (const { source, why } of sources) {
      const refused = await client.messages
        .create({
          model: "m",
          max_tokens: 50,
          messages: [
            {
              role: "user",
              content: [
                { type: "document", source },
                { type: "text", text: "Summarize." },
              ],
            },
          ],
        })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      assert.ok(refused instanceof Anthropic.BadRequestError, String(refused));
      const body = refused.error as { error?: { type?: string; message?: string } };
      assert.equal(body.error?.type, "invalid_request_error");
      assert.match(body.error?.message ?? "", /^messages\.0\.content\.0\.source\.type: /);
      assert.match(body.error?.message ?? "", why);
      assert.match(body.error?.message ?? "", /`base64`/);
    }
    assert.equal(chatRequests(mock).length, 0);
  });
});

describe("Anthropic SDK: tool names longer than chat's 64 characters (Claude Code's MCP tools)", () => {
  // 81 characters: Anthropic takes up to 128, OpenAI's chat API (and most providers copying it) 64.
  const longName = "mcp__acme-internal-knowledge-base__search_confluence_pages_by_label_and_space_key";

  for (const isStream of [false, true]) {
    test(`the tool goes upstream under a name chat takes; the call comes back under the client's name${isStream ? " (streamed)" : ""}`, async (t) => {
      const { mock, gateway } = await oneProviderScene(t);
      const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
      mock.enqueue(CHAT_ROUTE, functionNameCheckingUpstream(UPSTREAM_ID, isStream, '{"label":"runbook"}'));
      const request = {
        model: "m",
        max_tokens: 200,
        tools: [
          { name: longName, input_schema: { type: "object" as const, properties: { label: { type: "string" } } } },
        ],
        tool_choice: { type: "tool" as const, name: longName },
        messages: [
          { role: "user" as const, content: "Find the runbooks." },
          {
            role: "assistant" as const,
            content: [{ type: "tool_use" as const, id: "toolu_1", name: longName, input: { label: "ops" } }],
          },
          {
            role: "user" as const,
            content: [{ type: "tool_result" as const, tool_use_id: "toolu_1", content: "no pages" }],
          },
        ],
      };
      const message = isStream
        ? await client.messages.stream(request).finalMessage()
        : await client.messages.create(request);
      assert.deepEqual(message.content, [
        {
          type: "tool_use",
          id: "call_search",
          name: longName,
          input: { label: "runbook" },
          caller: { type: "direct" },
        },
      ]);
      assert.equal(message.stop_reason, "tool_use");
      const sent = chatRequests(mock)[0]?.body as {
        tools: { function: { name: string } }[];
        tool_choice: { function: { name: string } };
        messages: { tool_calls?: { function: { name: string } }[] }[];
      };
      const upstreamName = sent.tools[0]?.function.name ?? "";
      assert.match(upstreamName, FUNCTION_NAME);
      assert.ok(longName.startsWith(upstreamName.slice(0, 50)), upstreamName);
      assert.equal(sent.tool_choice.function.name, upstreamName);
      assert.equal(
        sent.messages[1]?.tool_calls?.[0]?.function.name,
        upstreamName,
        "the history's call: the same function",
      );
    });
  }
});

describe("tool calls the provider gave no id (NVIDIA's Kimi K2, GLM behind Mistral, llama.cpp)", () => {
  /** A call of `lookup` whose deltas carry no id, as those providers stream it; or a JSON answer without one. */
  function callWithoutId(isStream: boolean): MockStep {
    const args = '{"city":"Oslo"}';
    if (isStream) {
      return {
        kind: "sse",
        events: [
          chunk({ role: "assistant", content: null }),
          chunk({ tool_calls: [{ index: 0, type: "function", function: { name: "lookup", arguments: "" } }] }),
          chunk({ tool_calls: [{ index: 0, function: { arguments: args } }] }),
          chunk({}, "tool_calls"),
        ],
      };
    }
    const completion = chatCompletion("", UPSTREAM_ID);
    const message = {
      role: "assistant",
      content: null,
      tool_calls: [{ type: "function", function: { name: "lookup", arguments: args } }],
    };
    return {
      kind: "json",
      body: { ...completion, choices: [{ index: 0, message, logprobs: null, finish_reason: "tool_calls" }] },
    };
  }

  for (const isStream of [true, false]) {
    test(`Agents SDK over Chat Completions${isStream ? ", streamed" : ""}: the call gets an id, the tool runs and its result goes back under it`, async (t) => {
      const { mock, gateway } = await oneProviderScene(t);
      setTracingDisabled(true);
      const runner = new Runner({
        modelProvider: new OpenAIProvider({ apiKey: "x", baseURL: gateway.baseUrl, useResponses: false }),
      });
      const lookup = agentTool({
        name: "lookup",
        description: "The weather",
        parameters: z.object({ city: z.string() }),
        execute: async ({ city }) => `${city}: 3C`,
      });
      const agent = new Agent({ name: "Weather", instructions: "Use the tool.", model: "m", tools: [lookup] });
      mock.enqueue(CHAT_ROUTE, callWithoutId(isStream));
      mock.enqueue(
        CHAT_ROUTE,
        isStream
          ? { kind: "sse", events: chatStream(["3 degrees."], UPSTREAM_ID, { usage: true }) }
          : { kind: "json", body: chatCompletion("3 degrees.", UPSTREAM_ID) },
      );
      let finalOutput: unknown;
      if (isStream) {
        const result = await runner.run(agent, "Weather in Oslo?", { stream: true });
        for await (const _event of result) {
          // Drained.
        }
        await result.completed;
        finalOutput = result.finalOutput;
      } else {
        finalOutput = (await runner.run(agent, "Weather in Oslo?")).finalOutput;
      }
      assert.equal(finalOutput, "3 degrees.");
      const second = chatRequests(mock)[1]?.body as {
        messages: { role: string; content?: unknown; tool_call_id?: string; tool_calls?: { id: string }[] }[];
      };
      const [assistant, toolMessage] = second.messages.slice(-2);
      const id = assistant?.tool_calls?.[0]?.id ?? "";
      assert.match(id, /^call_[0-9a-f]{24}$/);
      assert.deepEqual(toolMessage, { role: "tool", tool_call_id: id, content: "Oslo: 3C" });
    });
  }
});

describe("a streamed call whose id comes only after its first delta", () => {
  // The first delta names the function without an id (the gateway makes one for it); the next brings the upstream's
  // own id with the arguments. Passed on as it came, that id differs from the one the client already has: the
  // Responses and Messages doors took it for a second call (one named, with `{}`, and one nameless with the
  // arguments), and a chat client holds the made id in its history while the stream said another.
  const lateId: MockStep = {
    kind: "sse",
    events: [
      chunk({ role: "assistant", content: null }),
      chunk({ tool_calls: [{ index: 0, type: "function", function: { name: "lookup", arguments: "" } }] }),
      chunk({ tool_calls: [{ index: 0, id: "upstream_late", function: { arguments: '{"city":"Oslo"}' } }] }),
      chunk({}, "tool_calls"),
    ],
  };

  for (const useResponses of [true, false]) {
    test(`Agents SDK over ${useResponses ? "Responses" : "Chat Completions"}, streamed: one call, run once with its arguments, answered under one id`, async (t) => {
      const { mock, gateway } = await oneProviderScene(t);
      setTracingDisabled(true);
      const runner = new Runner({
        modelProvider: new OpenAIProvider({ apiKey: "x", baseURL: gateway.baseUrl, useResponses }),
      });
      const ran: unknown[] = [];
      const lookup = agentTool({
        name: "lookup",
        description: "The weather",
        parameters: z.object({ city: z.string() }),
        execute: async (input) => {
          ran.push(input);
          return "3C";
        },
      });
      const agent = new Agent({ name: "Weather", instructions: "Use the tool.", model: "m", tools: [lookup] });
      mock.enqueue(CHAT_ROUTE, lateId);
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["3 degrees."], UPSTREAM_ID, { usage: true }) });
      const result = await runner.run(agent, "Weather in Oslo?", { stream: true });
      for await (const _event of result) {
        // Drained.
      }
      await result.completed;
      assert.equal(result.finalOutput, "3 degrees.");
      assert.deepEqual(ran, [{ city: "Oslo" }]);
      const second = chatRequests(mock)[1]?.body as {
        messages: { role: string; tool_call_id?: string; tool_calls?: { id: string; function: unknown }[] }[];
      };
      const [assistant, toolMessage] = second.messages.slice(-2);
      assert.equal(assistant?.tool_calls?.length, 1);
      const id = assistant?.tool_calls?.[0]?.id;
      assert.match(id ?? "", /^call_[0-9a-f]{24}$/, "the id the client got first, throughout");
      assert.deepEqual(assistant?.tool_calls?.[0]?.function, { name: "lookup", arguments: '{"city":"Oslo"}' });
      assert.equal(toolMessage?.tool_call_id, id);
    });
  }

  test("Anthropic SDK, streamed: one tool_use block with the arguments", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    mock.enqueue(CHAT_ROUTE, lateId);
    const stream = client.messages.stream({
      model: "m",
      max_tokens: 50,
      tools: [{ name: "lookup", input_schema: { type: "object", properties: { city: { type: "string" } } } }],
      messages: [{ role: "user", content: "Weather in Oslo?" }],
    });
    const message = await stream.finalMessage();
    assert.deepEqual(
      message.content.map((block) => (block.type === "tool_use" ? [block.name, block.input] : [block.type])),
      [["lookup", { city: "Oslo" }]],
    );
  });
});

describe("a custom tool's call that came without arguments", () => {
  // The "{}" a call without arguments is completed to (what OpenAI sends for a function without parameters) is no
  // custom tool's input: a custom call's input is the `input` string of the function it is upstream, here none.
  for (const isStream of [false, true]) {
    test(`openai client over Responses${isStream ? ", streamed" : ""}: the custom_tool_call's input is empty, not "{}"`, async (t) => {
      const { mock, gateway } = await oneProviderScene(t);
      const client = openAiClient(gateway);
      const call = { id: "call_note", type: "function", function: { name: "note", arguments: "" } };
      const completion = chatCompletion("", UPSTREAM_ID);
      mock.enqueue(
        CHAT_ROUTE,
        isStream
          ? {
              kind: "sse",
              events: [
                chunk({ role: "assistant", content: null }),
                chunk({ tool_calls: [{ index: 0, ...call }] }),
                chunk({}, "tool_calls"),
              ],
            }
          : {
              kind: "json",
              body: {
                ...completion,
                choices: [
                  {
                    index: 0,
                    message: { role: "assistant", content: null, tool_calls: [call] },
                    logprobs: null,
                    finish_reason: "tool_calls",
                  },
                ],
              },
            },
      );
      const request = { model: "m", input: "Take a note.", tools: [{ type: "custom" as const, name: "note" }] };
      const response = isStream
        ? await client.responses.stream(request).finalResponse()
        : await client.responses.create(request);
      assert.deepEqual(
        response.output.map((item) => (item.type === "custom_tool_call" ? [item.name, item.input] : [item.type])),
        [["note", ""]],
      );
    });
  }
});
