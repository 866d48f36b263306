// Function tools through POST /v1/responses where chat providers and clients differ from OpenAI's happy path,
// with the official openai SDK as the client: calls streamed without `tool_calls[].index` (Gemini), output
// replayed with its text after its call, and `tool_choice` with no tool left to send upstream.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { readChatChunks } from "../../src/protocols/__fixtures__/fixtures.ts";
import { CHAT_ROUTE, chatRequests, oneProviderScene, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import { chatCompletion, type MockUpstream, type SseScript } from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = VENDOR_MODEL_ID;

const scene = oneProviderScene;

const weatherTool = {
  type: "function" as const,
  name: "get_weather",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  strict: false,
};

function toolChunk(delta: unknown, finishReason: string | null = null): SseScript {
  return {
    data: {
      id: "chatcmpl-tools",
      object: "chat.completion.chunk",
      created: 1767225600,
      model: UPSTREAM_ID,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    },
  };
}

function sentMessages(mock: MockUpstream, index: number): unknown {
  return (chatRequests(mock)[index]?.body as { messages?: unknown } | undefined)?.messages;
}

describe("responses API: tool calls from quirky providers and clients", () => {
  test("a stream with each call whole in its own chunk and no index (Gemini) gives one function_call per call", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: readChatChunks("indexless-tool-calls").map((data) => ({ data })) });
    const final = await client.responses
      .stream({ model: "m", input: "Weather in Paris and Rome?", tools: [weatherTool] })
      .finalResponse();
    assert.deepEqual(
      final.output.map((item) => (item.type === "function_call" ? [item.call_id, item.arguments] : item.type)),
      [
        ["call_1", '{"city":"Paris"}'],
        ["call_2", '{"city":"Rome"}'],
      ],
    );
  });

  test("output whose text follows its call, sent back with the call's output: one assistant turn, then the tool message", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        toolChunk({
          role: "assistant",
          tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: "" } }],
        }),
        toolChunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":"Paris"}' } }] }),
        toolChunk({ content: "Let me look that up." }),
        toolChunk({}, "tool_calls"),
      ],
    });
    const first = await client.responses
      .stream({ model: "m", input: "Weather in Paris?", tools: [weatherTool], store: false })
      .finalResponse();
    assert.deepEqual(
      first.output.map((item) => item.type),
      ["function_call", "message"],
    );
    // Sent back as it came, the way the Agents SDK and hand-written loops do.
    const replayed = first.output.flatMap((item): OpenAI.Responses.ResponseInputItem[] =>
      item.type === "function_call" || item.type === "message" ? [item] : [],
    );
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Sunny.", UPSTREAM_ID) });
    const second = await client.responses.create({
      model: "m",
      tools: [weatherTool],
      store: false,
      input: [
        { role: "user", content: "Weather in Paris?" },
        ...replayed,
        { type: "function_call_output", call_id: "call_1", output: "sunny" },
      ],
    });
    assert.equal(second.output_text, "Sunny.");
    assert.deepEqual(sentMessages(mock, 1), [
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: "Let me look that up.",
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: "sunny" },
    ]);
  });

  test("tool_choice with no tool to send: auto and none are dropped, a required call is a 400 naming tool_choice", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Hi.", UPSTREAM_ID) });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Hi.", UPSTREAM_ID) });
    const auto = await client.responses.create({ model: "m", input: "hi", tool_choice: "auto" });
    assert.equal(auto.tool_choice, "auto", "the response repeats what the client sent");
    await client.responses.create({ model: "m", input: "hi", tools: [], tool_choice: "none" });
    for (const request of chatRequests(mock)) {
      const body = request.body as Record<string, unknown>;
      assert.ok(!("tool_choice" in body) && !("tools" in body), `no tool_choice without tools: ${request.bodyText}`);
    }
    const demands: OpenAI.Responses.ResponseCreateParamsNonStreaming[] = [
      { model: "m", input: "hi", tool_choice: "required" },
      {
        model: "m",
        input: "hi",
        tools: [weatherTool],
        tool_choice: { type: "allowed_tools", mode: "required", tools: [{ type: "function", name: "get_time" }] },
      },
      { model: "m", input: "hi", tools: [weatherTool], tool_choice: { type: "function", name: "get_time" } },
    ];
    for (const request of demands) {
      await assert.rejects(client.responses.create(request), (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError, String(error));
        assert.equal(error.type, "invalid_request_error");
        assert.equal(error.param, "tool_choice");
        assert.match(error.message, /tool/);
        return true;
      });
    }
    assert.equal(chatRequests(mock).length, 2, "the refused requests sent nothing upstream");
  });
});
