// What the Responses and Messages front doors make of upstream answers that the plainer e2e tests do not script,
// seen through the official SDKs (openai, @anthropic-ai/sdk) with the mock upstream speaking only Chat Completions:
// an error that rides on a stream chunk (OpenRouter's mid-stream failure), cache writes in the usage, and text that
// comes in the middle of a tool call's arguments.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { APIError } from "openai";
import { CHAT_ROUTE, oneProviderScene, send, VENDOR_MODEL_ID } from "../helpers/e2e.ts";
import { chatCompletion, type SseScript } from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = VENDOR_MODEL_ID;

function chunk(delta: unknown, finishReason: string | null = null, extra: Record<string, unknown> = {}): SseScript {
  return {
    data: {
      id: "chatcmpl-fidelity",
      object: "chat.completion.chunk",
      created: 1767225600,
      model: UPSTREAM_ID,
      choices: [{ index: 0, delta, finish_reason: finishReason }],
      ...extra,
    },
  };
}

/**
 * OpenRouter's documented mid-stream failure: once the answer has started (HTTP 200 sent), the error comes as a
 * chunk with an `error` object next to `choices`, `finish_reason: "error"`, then the stream ends normally.
 */
function streamFailingMidway(): SseScript[] {
  return [
    chunk({ role: "assistant", content: "Hel" }),
    chunk({ content: "" }, "error", { error: { code: 502, message: "Provider disconnected unexpectedly" } }),
  ];
}

describe("an error riding on a stream chunk (finish_reason `error`) fails the translated stream", () => {
  test("Responses: `error` then `response.failed`, which finalResponse() rejects on; the answer is not kept", async (t) => {
    const { mock, gateway, client } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: streamFailingMidway() });
    const stream = client.responses.stream({ model: "m", input: "Say hello" });
    const types: string[] = [];
    let responseId: string | undefined;
    stream.on("event", (event) => {
      types.push(event.type);
      if (event.type === "response.created") responseId = event.response.id;
    });
    // The SDK raises the `error` event (its nested `error`, as OpenAI sends it) as an APIError with its code and message.
    await assert.rejects(stream.finalResponse(), (error: unknown) => {
      assert.ok(error instanceof APIError, String(error));
      assert.equal(error.code, "stream_interrupted");
      assert.match(error.message, /Provider disconnected unexpectedly/);
      return true;
    });
    assert.equal(types.includes("response.completed"), false, types.join(" "));
    assert.ok(types.includes("response.output_text.delta"), types.join(" "));
    assert.ok(responseId !== undefined);
    // A failed answer is nothing to continue from: it is not kept.
    const kept = await send(gateway, "GET", `/v1/responses/${responseId}`);
    assert.equal(kept.status, 404, kept.text);

    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: streamFailingMidway() });
    const raw = await send(gateway, "POST", "/v1/responses", { body: { model: "m", input: "x", stream: true } });
    const failed = raw.text
      .split("\n")
      .filter((line) => line.startsWith("data: "))
      .map((line) => JSON.parse(line.slice(6)) as { type: string; response?: { status: string; output_text: string } })
      .at(-1);
    assert.equal(failed?.type, "response.failed");
    assert.equal(failed?.response?.status, "failed");
    assert.equal(failed?.response?.output_text, "Hel", "the output so far is in the failed response");
  });

  test("Messages: `event: error`, which the Anthropic SDK raises, instead of an end_turn with half an answer", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: streamFailingMidway() });
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    await assert.rejects(
      client.messages
        .stream({ model: "m", max_tokens: 64, messages: [{ role: "user", content: "Say hello" }] })
        .finalMessage(),
      (error: unknown) => {
        assert.ok(error instanceof Anthropic.APIError, String(error));
        assert.equal((error.error as { error?: { type?: string } }).error?.type, "api_error");
        assert.match(String(error), /Provider disconnected unexpectedly/);
        return true;
      },
    );
  });

  test("Chat Completions passes the chunk on as it is: the openai SDK raises it (unchanged)", async (t) => {
    const { mock, client } = await oneProviderScene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: streamFailingMidway() });
    const stream = await client.chat.completions.create({
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "Say hello" }],
    });
    await assert.rejects(async () => {
      for await (const _chunk of stream) {
        // Drained until the error chunk raises.
      }
    }, APIError);
  });
});

describe("cache writes in the usage (OpenRouter's `prompt_tokens_details.cache_write_tokens`)", () => {
  /** OpenRouter's documented usage: 194 prompt tokens, of which 100 were written to the cache and 40 read from it. */
  const usage = {
    prompt_tokens: 194,
    completion_tokens: 2,
    total_tokens: 196,
    prompt_tokens_details: { cached_tokens: 40, cache_write_tokens: 100 },
  };
  const expected = {
    input_tokens: 54,
    output_tokens: 2,
    cache_creation_input_tokens: 100,
    cache_read_input_tokens: 40,
    // The rest of the SDK's \`Usage\`: null, as nothing upstream tells them (see messages-stop-fields.test.ts).
    output_tokens_details: null,
    server_tool_use: null,
    cache_creation: null,
    inference_geo: null,
    service_tier: null,
    speed: null,
  };

  test("Messages: cache_creation_input_tokens, and input_tokens without them (as Anthropic counts), JSON and stream", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: { ...chatCompletion("Hi there", UPSTREAM_ID), usage } });
    const message = await client.messages.create({
      model: "m",
      max_tokens: 64,
      messages: [{ role: "user", content: "Say hi" }],
    });
    assert.deepEqual(message.usage, expected);

    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        chunk({ role: "assistant", content: "Hi there" }),
        chunk({}, "stop"),
        { data: { id: "chatcmpl-fidelity", object: "chat.completion.chunk", model: UPSTREAM_ID, choices: [], usage } },
      ],
    });
    const streamed = await client.messages
      .stream({ model: "m", max_tokens: 64, messages: [{ role: "user", content: "Say hi" }] })
      .finalMessage();
    assert.deepEqual(streamed.usage, expected);
  });
});

describe("text in the middle of a streamed tool call's arguments", () => {
  const weatherTool = { name: "get_weather", input_schema: { type: "object" as const } };

  test("Messages: the call keeps all its arguments (the text follows its block), as the JSON answer has them", async (t) => {
    const { mock, gateway } = await oneProviderScene(t);
    const call = (index: number, fields: Record<string, unknown>) => chunk({ tool_calls: [{ index, ...fields }] });
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        chunk({ role: "assistant", content: "Checking." }),
        call(0, { id: "call_a", type: "function", function: { name: "get_weather", arguments: '{"city":' } }),
        chunk({ content: " One moment." }),
        call(0, { function: { arguments: '"Paris"}' } }),
        call(1, { id: "call_b", type: "function", function: { name: "get_weather", arguments: '{"city":"Rome"}' } }),
        chunk({}, "tool_calls"),
      ],
    });
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const stream = client.messages.stream({
      model: "m",
      max_tokens: 64,
      tools: [weatherTool],
      messages: [{ role: "user", content: "Weather in Paris and Rome?" }],
    });
    // What a client that acts on each block as it stops sees (Claude-style tools run a tool_use at its stop).
    const stoppedBlocks: unknown[] = [];
    stream.on("contentBlock", (block) => stoppedBlocks.push(block));
    const message = await stream.finalMessage();
    const expected = [
      { type: "text", text: "Checking.", citations: null },
      { type: "tool_use", id: "call_a", name: "get_weather", input: { city: "Paris" }, caller: { type: "direct" } },
      { type: "text", text: " One moment.", citations: null },
      { type: "tool_use", id: "call_b", name: "get_weather", input: { city: "Rome" }, caller: { type: "direct" } },
    ];
    assert.deepEqual(message.content, expected);
    assert.deepEqual(stoppedBlocks, expected);
    assert.equal(message.stop_reason, "tool_use");
  });
});
