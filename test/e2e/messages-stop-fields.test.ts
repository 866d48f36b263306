// POST /v1/messages through the Anthropic SDK, for the fields its types require that a chat answer has nothing for:
// `stop_details`, `container`, `diagnostics`, the usage's nullable fields and the blocks' `citations` (null, as
// Anthropic sends them when they do not apply, in JSON and on the stream's `message_start`, `content_block_start`
// and `message_delta`, from which the SDK's MessageStream copies them), and a chat provider's refusals: a model's own
// (`message.refusal`) is text the client gets, its filter's (`content_filter`) Anthropic's `refusal` stop with details.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic, { betaRefusalFallbackMiddleware } from "@anthropic-ai/sdk";
import type { Message } from "@anthropic-ai/sdk/resources/messages";
import { CHAT_ROUTE, chatRequests, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, type SseScript } from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = "vendor/m-instruct";
const FALLBACK_UPSTREAM_ID = "vendor/m2-instruct";

async function scene(t: Parameters<typeof useMock>[0]) {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: { id: ${UPSTREAM_ID} }
      m2: { id: ${FALLBACK_UPSTREAM_ID} }
`,
  );
  return { mock, gateway, client: new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 }) };
}

function chunk(delta: unknown, finishReason: string | null = null, extra: Record<string, unknown> = {}): SseScript {
  return {
    data: {
      id: "chatcmpl-stop",
      object: "chat.completion.chunk",
      created: 1767225600,
      model: UPSTREAM_ID,
      choices: [{ index: 0, delta, finish_reason: finishReason }],
      ...extra,
    },
  };
}

const request = { model: "m", max_tokens: 64, messages: [{ role: "user" as const, content: "Help me" }] };

/** OpenAI's structured-outputs refusal: the model declines in `message.refusal`, here after some text. */
const refusingAnswer = {
  ...chatCompletion("Let me see.", UPSTREAM_ID),
  choices: [
    {
      index: 0,
      message: { role: "assistant", content: "Let me see.", refusal: "I can't help with that request." },
      logprobs: null,
      finish_reason: "stop",
    },
  ],
};

function refusingStream(finishReason: string): SseScript[] {
  return [
    chunk({ role: "assistant", content: "Let me see." }),
    chunk({ refusal: "I can't help" }),
    chunk({ refusal: " with that request." }),
    chunk({}, finishReason),
  ];
}

/** What a message that ended on its own has, besides its content, whether it came as JSON or streamed. */
function assertPlainEnd(message: Message): void {
  assert.equal(message.stop_reason, "end_turn");
  // `null`, not missing: the SDK's types require them, and its MessageStream sets `stop_details` from message_delta.
  assert.equal(message.stop_details, null);
  assert.equal(message.container, null);
  assert.equal(message.diagnostics, null);
  assert.equal(message.usage.server_tool_use, null);
  assert.equal(message.usage.service_tier, null);
}

describe("messages API: how an answer ended, as the SDK's Message has it", () => {
  test("JSON: a chat refusal after text is a text block of its own (neither is lost), ending end_turn", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: refusingAnswer });
    const message = await client.messages.create(request);
    assert.deepEqual(message.content, [
      { type: "text", text: "Let me see.", citations: null },
      { type: "text", text: "I can't help with that request.", citations: null },
    ]);
    assertPlainEnd(message);
    assert.equal(message.usage.cache_creation, null);
  });

  test("stream: the refusal's deltas open a text block of their own; message_delta carries stop_details", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: refusingStream("stop") });
    const stream = client.messages.stream(request);
    const blocks: unknown[] = [];
    stream.on("contentBlock", (block) => blocks.push(block));
    const message = await stream.finalMessage();
    const expected = [
      { type: "text", text: "Let me see.", citations: null },
      { type: "text", text: "I can't help with that request.", citations: null },
    ];
    assert.deepEqual(message.content, expected);
    assert.deepEqual(blocks, expected, "each block is whole at its content_block_stop");
    assertPlainEnd(message);
  });

  test("stream: message_start's message and content_block_start's block have the nullable fields too", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: [chunk({ role: "assistant", content: "Hi" }), chunk({}, "stop")] });
    const events = [];
    for await (const event of await client.messages.create({ ...request, stream: true })) events.push(event);
    const start = events.find((event) => event.type === "message_start");
    assert.ok(start !== undefined);
    assert.equal(start.message.stop_details, null);
    assert.equal(start.message.container, null);
    assert.equal(start.message.diagnostics, null);
    const blockStart = events.find((event) => event.type === "content_block_start");
    assert.deepEqual(blockStart?.content_block, { type: "text", text: "", citations: null });
    const delta = events.find((event) => event.type === "message_delta");
    assert.ok(delta !== undefined);
    assert.deepEqual(delta.delta, {
      stop_reason: "end_turn",
      stop_sequence: null,
      stop_details: null,
      container: null,
    });
    assert.equal(delta.usage.server_tool_use, null);
  });

  test("content_filter is Anthropic's refusal stop, with its details (no category or explanation to name)", async (t) => {
    const { mock, client } = await scene(t);
    const refusalDetails = { type: "refusal", category: null, explanation: null };
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: {
        ...refusingAnswer,
        choices: [{ ...refusingAnswer.choices[0], finish_reason: "content_filter" }],
      },
    });
    const message = await client.messages.create(request);
    assert.equal(message.stop_reason, "refusal");
    assert.deepEqual(message.stop_details, refusalDetails);
    assert.equal(message.content.length, 2, "what came before the filter is kept, as Anthropic keeps it");

    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: refusingStream("content_filter") });
    const streamed = await client.messages.stream(request).finalMessage();
    assert.equal(streamed.stop_reason, "refusal");
    assert.deepEqual(streamed.stop_details, refusalDetails);
  });

  test("reasoning tokens the provider counted are output_tokens_details.thinking_tokens, JSON and stream", async (t) => {
    const { mock, client } = await scene(t);
    const usage = {
      prompt_tokens: 12,
      completion_tokens: 40,
      total_tokens: 52,
      completion_tokens_details: { reasoning_tokens: 30 },
    };
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: { ...chatCompletion("Done.", UPSTREAM_ID), usage } });
    const message = await client.messages.create(request);
    assert.deepEqual(message.usage.output_tokens_details, { thinking_tokens: 30 });
    assert.equal(message.usage.output_tokens, 40);

    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        chunk({ role: "assistant", content: "Done." }),
        chunk({}, "stop"),
        { data: { id: "chatcmpl-stop", object: "chat.completion.chunk", model: UPSTREAM_ID, choices: [], usage } },
      ],
    });
    const streamed = await client.messages.stream(request).finalMessage();
    assert.deepEqual(streamed.usage.output_tokens_details, { thinking_tokens: 30 });
  });

  test("the SDK's refusal-fallback middleware reads the filter's refusal and retries on its fallback model", async (t) => {
    const { mock, gateway } = await scene(t);
    const client = new Anthropic({
      baseURL: gateway.url,
      apiKey: "x",
      maxRetries: 0,
      middleware: [betaRefusalFallbackMiddleware([{ model: "m2" }])],
    });
    mock.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: {
        ...chatCompletion("", UPSTREAM_ID),
        choices: [{ ...refusingAnswer.choices[0], finish_reason: "content_filter" }],
      },
    });
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("Here you go.", FALLBACK_UPSTREAM_ID) });
    const message = await client.beta.messages.create(request);
    assert.equal(message.stop_reason, "end_turn");
    assert.deepEqual(message.content, [
      { type: "fallback", from: { model: "m" }, to: { model: "m2" }, trigger: { type: "refusal", category: null } },
      { type: "text", text: "Here you go.", citations: null },
    ]);
    assert.deepEqual(
      chatRequests(mock).map((sent) => (sent.body as { model: string }).model),
      [UPSTREAM_ID, FALLBACK_UPSTREAM_ID],
    );
  });
});
