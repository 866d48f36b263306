// POST /v1/messages end to end, with the official @anthropic-ai/sdk as the client and the mock upstream speaking
// only Chat Completions behind the gateway: JSON, stream() with finalMessage(), a tool round trip, countTokens,
// typed errors in Anthropic's shape, and failover / stream continuation through this front door.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { readChatChunks } from "../../src/protocols/__fixtures__/fixtures.ts";
import { toolCallCompletion, toolCallStream } from "../helpers/chat-tool-calls.ts";
import { CHAT_ROUTE, chatRequests, oneProviderScene, send, type useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { chatCompletion, chatStream, rateLimited } from "../helpers/mock-upstream.ts";
import { MODEL, sentBody, startTwoProviders } from "../helpers/two-providers.ts";

const UPSTREAM_ID = "vendor/m-instruct";
const CLIENT_KEY = "client-key-anthropic";

function anthropicClient(gateway: TestGateway, apiKey = CLIENT_KEY): Anthropic {
  return new Anthropic({ baseURL: gateway.url, apiKey, maxRetries: 0 });
}

async function scene(t: Parameters<typeof useMock>[0]) {
  const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID }, CLIENT_KEY);
  return { mock, gateway, client: anthropicClient(gateway) };
}

const weatherTool = {
  name: "get_weather",
  description: "Current weather for a city",
  input_schema: { type: "object" as const, properties: { city: { type: "string" } }, required: ["city"] },
};

describe("messages API (@anthropic-ai/sdk)", () => {
  test("messages.create: an Anthropic message from a chat answer; the key came as x-api-key", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: chatCompletion("Bonjour.", UPSTREAM_ID, { prompt_tokens: 12, completion_tokens: 2 }),
    });
    const message = await client.messages.create({
      model: "m",
      max_tokens: 64,
      system: "Answer in French.",
      messages: [{ role: "user", content: "Hello" }],
      stop_sequences: ["END"],
      metadata: { user_id: "user-1" },
    });
    assert.match(message.id, /^msg_/);
    assert.equal(message.type, "message");
    assert.equal(message.role, "assistant");
    assert.equal(message.model, UPSTREAM_ID);
    assert.deepEqual(message.content, [{ type: "text", text: "Bonjour.", citations: null }]);
    assert.equal(message.stop_reason, "end_turn");
    assert.equal(message.usage.input_tokens, 12);
    assert.equal(message.usage.output_tokens, 2);
    const [upstream] = chatRequests(mock);
    assert.deepEqual(upstream?.body, {
      model: UPSTREAM_ID,
      messages: [
        { role: "system", content: "Answer in French." },
        { role: "user", content: "Hello" },
      ],
      max_tokens: 64,
      stop: ["END"],
      user: "user-1",
    });
  });

  test("messages.stream: finalMessage() and the text events, from a chat stream", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(["Hel", "lo", " there"], UPSTREAM_ID, { usage: true }),
    });
    const stream = client.messages.stream({ model: "m", max_tokens: 64, messages: [{ role: "user", content: "Hi" }] });
    const deltas: string[] = [];
    stream.on("text", (delta) => deltas.push(delta));
    const message = await stream.finalMessage();
    assert.deepEqual(deltas, ["Hel", "lo", " there"]);
    assert.deepEqual(message.content, [{ type: "text", text: "Hello there", citations: null }]);
    assert.equal(message.stop_reason, "end_turn");
    assert.equal(message.usage.output_tokens, 3);
    assert.equal(message.usage.input_tokens, 10);
  });

  test("a tool round trip: tool_use (streamed) -> tool_result -> answer, the mock sees tool_calls and a tool message", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: toolCallStream(UPSTREAM_ID, [{ id: "call_w1", name: "get_weather", arguments: '{"city":"Paris"}' }]),
    });
    const question = { role: "user" as const, content: "Weather in Paris?" };
    const first = await client.messages
      .stream({ model: "m", max_tokens: 100, tools: [weatherTool], tool_choice: { type: "any" }, messages: [question] })
      .finalMessage();
    assert.equal(first.stop_reason, "tool_use");
    const use = first.content.find((block) => block.type === "tool_use");
    assert.ok(use?.type === "tool_use");
    assert.deepEqual([use.id, use.name, use.input], ["call_w1", "get_weather", { city: "Paris" }]);
    const firstSent = (chatRequests(mock)[0]?.body ?? {}) as { tools?: unknown; tool_choice?: unknown };
    assert.equal(firstSent.tool_choice, "required");
    assert.deepEqual(firstSent.tools, [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Current weather for a city",
          parameters: weatherTool.input_schema,
        },
      },
    ]);

    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("18C and sunny.", UPSTREAM_ID) });
    const second = await client.messages.create({
      model: "m",
      max_tokens: 100,
      tools: [weatherTool],
      messages: [
        question,
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "18C, sunny" }] },
      ],
    });
    assert.deepEqual(second.content, [{ type: "text", text: "18C and sunny.", citations: null }]);
    assert.deepEqual(((chatRequests(mock)[1]?.body ?? {}) as { messages?: unknown }).messages, [
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "call_w1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
        ],
      },
      { role: "tool", tool_call_id: "call_w1", content: "18C, sunny" },
    ]);
  });

  test("a JSON tool_use answer carries the parsed input", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: toolCallCompletion(UPSTREAM_ID, [{ id: "call_2", name: "get_weather", arguments: '{"city":"Rome"}' }]),
    });
    const message = await client.messages.create({
      model: "m",
      max_tokens: 100,
      tools: [weatherTool],
      messages: [{ role: "user", content: "Weather in Rome?" }],
    });
    assert.deepEqual(message.content, [
      { type: "tool_use", id: "call_2", name: "get_weather", input: { city: "Rome" }, caller: { type: "direct" } },
    ]);
    assert.equal(message.stop_reason, "tool_use");
  });

  test("a stream with each call whole in its own chunk and no index (Gemini): one tool_use block per call", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: readChatChunks("indexless-tool-calls").map((data) => ({ data })) });
    const message = await client.messages
      .stream({
        model: "m",
        max_tokens: 100,
        tools: [weatherTool],
        messages: [{ role: "user", content: "Weather in Paris and Rome?" }],
      })
      .finalMessage();
    assert.deepEqual(message.content, [
      { type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Paris" }, caller: { type: "direct" } },
      { type: "tool_use", id: "call_2", name: "get_weather", input: { city: "Rome" }, caller: { type: "direct" } },
    ]);
    assert.equal(message.stop_reason, "tool_use");
  });

  test("countTokens answers from the gateway's estimate without an upstream call", async (t) => {
    const { mock, client } = await scene(t);
    const short = await client.messages.countTokens({ model: "m", messages: [{ role: "user", content: "Hi" }] });
    const long = await client.messages.countTokens({
      model: "m",
      system: "You are a helpful assistant.",
      messages: [{ role: "user", content: "Tell me a long story about the sea and the ships on it, please." }],
    });
    assert.ok(short.input_tokens > 0);
    assert.ok(long.input_tokens > short.input_tokens + 10, `${long.input_tokens} vs ${short.input_tokens}`);
    assert.equal(chatRequests(mock).length, 0);
  });

  test("errors come in Anthropic's shape and raise the SDK's typed errors", async (t) => {
    const { mock, gateway, client } = await scene(t);
    await assert.rejects(
      client.messages.create({ model: "no-such-model", max_tokens: 10, messages: [{ role: "user", content: "x" }] }),
      (error: unknown) => {
        assert.ok(error instanceof Anthropic.NotFoundError, String(error));
        assert.equal((error.error as { error?: { type?: string } }).error?.type, "not_found_error");
        return true;
      },
    );
    await assert.rejects(
      anthropicClient(gateway, "wrong-key").messages.create({
        model: "m",
        max_tokens: 10,
        messages: [{ role: "user", content: "x" }],
      }),
      Anthropic.AuthenticationError,
    );
    const missingMax = await send(gateway, "POST", "/v1/messages", {
      body: { model: "m", messages: [{ role: "user", content: "x" }] },
      headers: { "x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01" },
    });
    assert.equal(missingMax.status, 400);
    assert.deepEqual(missingMax.json, {
      type: "error",
      error: {
        type: "invalid_request_error",
        message: "`max_tokens` is required: an integer, 0 or more (the Messages API has no default)",
      },
      request_id: missingMax.headers["x-request-id"],
    });
    await assert.rejects(
      client.messages.create({
        model: "m",
        max_tokens: 10,
        tools: [{ type: "web_search_20250305", name: "web_search" }],
        messages: [{ role: "user", content: "x" }],
      }),
      Anthropic.BadRequestError,
    );
    assert.equal(chatRequests(mock).length, 0);
  });

  test("a call's malformed arguments: the stream sends only what keeps them one JSON object, and agrees with JSON", async (t) => {
    const { mock, client } = await scene(t);
    const request = {
      model: "m",
      max_tokens: 100,
      tools: [weatherTool],
      messages: [{ role: "user" as const, content: "Weather?" }],
    };
    // A brace too many, no object at all, a raw line break inside a string (JSON.parse refuses all three).
    const cases = [
      { sent: '{"city":"Paris"}}', input: { city: "Paris" } },
      { sent: "Paris", input: {} },
      { sent: '{"city":"Pa\nris"}', input: { city: "Pa\nris" } },
      // White space before no object: the stream sent "\n " alone, which the SDK parsed at the block's stop, and
      // threw (JSON.parse("")): the client lost the whole answer.
      { sent: "\n Paris", input: {} },
      // Cut inside the object: the stream sent `{"city":"Paris",`, which the SDK reads as the city; JSON gave {}.
      { sent: '{"city":"Paris",}', input: { city: "Paris" } },
      { sent: '{"city":"Paris","unit":"c" "days":2}', input: { city: "Paris", unit: "c" } },
    ];
    for (const { sent, input } of cases) {
      const call = { id: "call_m", name: "get_weather", arguments: sent };
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events: toolCallStream(UPSTREAM_ID, [call]) });
      mock.enqueue(CHAT_ROUTE, { kind: "json", body: toolCallCompletion(UPSTREAM_ID, [call]) });
      // The SDK's MessageStream parses input_json_delta pieces as they come: anything after a whole object, or
      // anything no object starts with, made it throw and the client lost the whole answer.
      const streamed = await client.messages.stream(request).finalMessage();
      const json = await client.messages.create(request);
      const expected = [{ type: "tool_use", id: "call_m", name: "get_weather", input, caller: { type: "direct" } }];
      assert.deepEqual(streamed.content, expected, sent);
      assert.deepEqual(json.content, expected, sent);
    }
  });

  test("interleaved parallel calls (OpenAI): each tool_use block is whole at its stop, as the SDK's contentBlock sees it", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: readChatChunks("interleaved-tool-calls").map((data) => ({ data })),
    });
    const stream = client.messages.stream({
      model: "m",
      max_tokens: 100,
      tools: [weatherTool, { name: "get_time", input_schema: { type: "object" } }],
      messages: [{ role: "user", content: "Weather and time in Paris?" }],
    });
    const completed: unknown[] = [];
    // A copy: the SDK would go on changing the block if deltas came for it after its stop.
    stream.on("contentBlock", (block) => completed.push(structuredClone(block)));
    const message = await stream.finalMessage();
    const expected = [
      { type: "tool_use", id: "call_a", name: "get_weather", input: { city: "Paris" }, caller: { type: "direct" } },
      { type: "tool_use", id: "call_b", name: "get_time", input: { tz: "CET" }, caller: { type: "direct" } },
    ];
    assert.deepEqual(completed, expected);
    assert.deepEqual(message.content, expected);
    assert.equal(message.stop_reason, "tool_use");
  });
});

describe("messages API: failover and continuation work as on chat", () => {
  test("a 429 on the first provider: the second serves the message", async (t) => {
    const scene2 = await startTwoProviders(t);
    scene2.primary.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "30" }));
    scene2.backup.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("from beta", MODEL) });
    const client = anthropicClient(scene2.gateway, "x");
    const { data, response } = await client.messages
      .create({ model: MODEL, max_tokens: 10, messages: [{ role: "user", content: "hi" }] })
      .withResponse();
    assert.deepEqual(data.content, [{ type: "text", text: "from beta", citations: null }]);
    assert.equal(response.headers.get("x-gateway-provider"), "beta");
  });

  test("a stream cut mid-answer is continued on the second provider; finalMessage() has the whole text", async (t) => {
    const scene2 = await startTwoProviders(t);
    const words = Array.from({ length: 30 }, (_, index) => ` w${index}`);
    scene2.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream(words.slice(0, 20), MODEL).slice(0, 21),
      end: "destroy",
    });
    scene2.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(words.slice(20), MODEL, { usage: true }) });
    const client = anthropicClient(scene2.gateway, "x");
    const message = await client.messages
      .stream({ model: MODEL, max_tokens: 200, messages: [{ role: "user", content: "count" }] })
      .finalMessage();
    assert.deepEqual(message.content, [{ type: "text", text: words.join(""), citations: null }]);
    assert.equal(message.stop_reason, "end_turn");
    const sent = sentBody(scene2.backup).messages as { role: string; content: string }[];
    assert.equal(sent.at(-1)?.role, "assistant", "continued from the delivered text (prefill)");
  });

  test("a stream that breaks and cannot be continued ends with `event: error`, raised by the SDK", async (t) => {
    const scene2 = await startTwoProviders(t);
    scene2.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: chatStream([" a", " b"], MODEL).slice(0, 3),
      end: "destroy",
    });
    scene2.backup.enqueue(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "down" } } });
    // Asked last to continue after its cut, the primary fails too.
    scene2.primary.enqueue(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "down" } } });
    const client = anthropicClient(scene2.gateway, "x");
    await assert.rejects(
      client.messages
        .stream({ model: MODEL, max_tokens: 200, messages: [{ role: "user", content: "x" }] })
        .finalMessage(),
      (error: unknown) => {
        assert.ok(error instanceof Anthropic.APIError, String(error));
        assert.equal((error.error as { error?: { type?: string } }).error?.type, "api_error");
        return true;
      },
    );
  });
});
