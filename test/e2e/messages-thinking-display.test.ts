// `thinking.display: "omitted"` through `@anthropic-ai/sdk`: Anthropic then sends each thinking block with empty
// `thinking` text (and its signature), streamed as a block with no `thinking_delta`; the gateway does the same with a
// chat provider's reasoning, which it neither shows nor drops silently (the client still learns the model thought).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import type { RawMessageStreamEvent } from "@anthropic-ai/sdk/resources/messages";
import { CHAT_ROUTE, oneProviderScene, type useMock } from "../helpers/e2e.ts";
import { chatCompletion, type SseScript } from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = "vendor/m-instruct";

async function scene(t: Parameters<typeof useMock>[0]) {
  const { mock, gateway } = await oneProviderScene(t, { id: UPSTREAM_ID });
  return { mock, client: new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 }) };
}

function chunk(delta: unknown, finishReason: string | null = null): SseScript {
  return {
    data: {
      id: "chatcmpl-think",
      object: "chat.completion.chunk",
      created: 1767225600,
      model: UPSTREAM_ID,
      choices: [{ index: 0, delta, finish_reason: finishReason }],
    },
  };
}

const reasonedAnswer = {
  ...chatCompletion("Four.", UPSTREAM_ID),
  choices: [
    {
      index: 0,
      message: { role: "assistant", content: "Four.", reasoning_content: "Two and two make four." },
      finish_reason: "stop",
    },
  ],
};

const request = {
  model: "m",
  max_tokens: 2048,
  messages: [{ role: "user" as const, content: "2+2?" }],
  thinking: { type: "enabled" as const, budget_tokens: 1024, display: "omitted" as const },
};

describe("messages API: thinking.display omitted", () => {
  test("JSON: the thinking block is there, without its text", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: reasonedAnswer });
    const message = await client.messages.create(request);
    assert.deepEqual(message.content, [
      { type: "thinking", thinking: "", signature: "" },
      { type: "text", text: "Four.", citations: null },
    ]);
  });

  test("streamed: the thinking block opens and stops with no thinking_delta; the text follows", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        chunk({ role: "assistant", reasoning_content: "Two and two" }),
        chunk({ reasoning_content: " make four." }),
        chunk({ content: "Four." }),
        chunk({}, "stop"),
      ],
    });
    const stream = client.messages.stream(request);
    const events: RawMessageStreamEvent[] = [];
    stream.on("streamEvent", (event) => events.push(event));
    const message = await stream.finalMessage();
    assert.deepEqual(message.content, [
      { type: "thinking", thinking: "", signature: "" },
      { type: "text", text: "Four.", citations: null },
    ]);
    const deltaTypes = events.flatMap((event) => (event.type === "content_block_delta" ? [event.delta.type] : []));
    assert.deepEqual(deltaTypes, ["signature_delta", "text_delta"]);
  });

  test("summarized (the default) still shows the thinking text", async (t) => {
    const { mock, client } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "json", body: reasonedAnswer });
    const message = await client.messages.create({
      ...request,
      thinking: { type: "enabled", budget_tokens: 1024, display: "summarized" },
    });
    assert.deepEqual(message.content[0], { type: "thinking", thinking: "Two and two make four.", signature: "" });
  });
});
