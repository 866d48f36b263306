// An upstream stream that says "overloaded" in-band before any content (Anthropic-style `event: error` with
// `overloaded_error`, or an OpenAI-style error chunk saying so) is that upstream's overload, as a 529 status would
// be: nothing reached the client yet, so the next candidate is tried, the overloaded one cools down (the next request
// does not ask it), and when every candidate answers so the client gets the overload answer (529 `overloaded_error`
// on /v1/messages, 503 `upstream_overloaded` on the OpenAI doors). Before 2026-12-07 it was a blip: no cooldown,
// and a 502 when every candidate sent one.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { CHAT_ROUTE, chatRequests, HELLO, openAiClient, twoProviderScene } from "../helpers/e2e.ts";
import type { MockStep } from "../helpers/mock-upstream.ts";

/** Anthropic's in-stream overload, before any content: `event: error` with `overloaded_error`. */
const ANTHROPIC_OVERLOAD: MockStep = {
  kind: "sse",
  events: [
    {
      raw: `event: error\ndata: ${JSON.stringify({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } })}\n\n`,
    },
  ],
  end: "close-without-done",
};

/** An OpenAI-style error chunk naming the overload (`code: "overloaded"`), before any content. */
const OPENAI_OVERLOAD: MockStep = {
  kind: "sse",
  events: [
    {
      data: {
        error: {
          message: "The model is overloaded. Please try again later.",
          type: "server_error",
          code: "overloaded",
        },
      },
    },
  ],
  end: "close-without-done",
};

/**
 * OpenRouter's documented in-stream error chunk (its stream opened with `: OPENROUTER PROCESSING` comments, so a
 * routed provider's overload before the first token comes in-band): the error object beside a choice that adds
 * nothing, `finish_reason: "error"`.
 */
const OPENROUTER_OVERLOAD: MockStep = {
  kind: "sse",
  events: [
    {
      data: {
        id: "gen-1",
        object: "chat.completion.chunk",
        provider: "Anthropic",
        error: { code: "server_error", message: "Overloaded" },
        choices: [{ index: 0, delta: { content: "" }, finish_reason: "error" }],
      },
    },
  ],
  end: "close-without-done",
};

const ANSWER: MockStep = {
  kind: "sse",
  events: [
    {
      data: {
        id: "c1",
        object: "chat.completion.chunk",
        choices: [{ index: 0, delta: { role: "assistant", content: "Hello from p1." } }],
      },
    },
    { data: { id: "c1", object: "chat.completion.chunk", choices: [{ index: 0, delta: {}, finish_reason: "stop" }] } },
  ],
};

/** `first` tried first, then `second`, both serving `m` (the failover scene of test/helpers/e2e.ts). */
function scene(t: TestContext) {
  return twoProviderScene(t, {
    model: "m",
    firstModel: "{}",
    secondModel: "{}",
    firstKeys: "retries: 0",
    hasChatModel: false,
  });
}

async function streamedText(openai: OpenAI): Promise<string> {
  const stream = await openai.chat.completions.create({ model: "m", messages: HELLO, stream: true });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
  return text;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.fail("expected a refusal"),
    (caught: unknown) => caught,
  );
}

describe("an in-stream overload before any content", () => {
  for (const [name, overload] of [
    ["Anthropic-style event: error overloaded_error", ANTHROPIC_OVERLOAD],
    ["OpenAI-style error chunk code overloaded", OPENAI_OVERLOAD],
    ["OpenRouter's error chunk beside a finish_reason error choice", OPENROUTER_OVERLOAD],
  ] as const) {
    test(`${name}: fails over, and the overloaded candidate cools down`, async (t) => {
      const { first, second, gateway } = await scene(t);
      first.enqueue(CHAT_ROUTE, overload);
      second.enqueue(CHAT_ROUTE, ANSWER);
      second.enqueue(CHAT_ROUTE, ANSWER);
      const openai = openAiClient(gateway);
      assert.equal(await streamedText(openai), "Hello from p1.");
      assert.equal(await streamedText(openai), "Hello from p1.");
      assert.equal(chatRequests(first).length, 1, "the overloaded candidate was not asked again while it cools");
      assert.equal(chatRequests(second).length, 2);
    });
  }

  test("every candidate so: 529 overloaded_error on the Messages door (the SDK's OverloadedError)", async (t) => {
    const { first, second, gateway } = await scene(t);
    first.enqueue(CHAT_ROUTE, ANTHROPIC_OVERLOAD);
    second.enqueue(CHAT_ROUTE, OPENAI_OVERLOAD);
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const error = await rejection(
      (async () => {
        const stream = await anthropic.messages.create({
          model: "m",
          max_tokens: 10,
          stream: true,
          messages: [{ role: "user", content: "hi" }],
        });
        for await (const _event of stream) {
          // Drained: the refusal comes before any event.
        }
      })(),
    );
    assert.ok(error instanceof Anthropic.APIError, String(error));
    assert.equal(error.status, 529, String(error));
    assert.ok(error instanceof Anthropic.OverloadedError);
    assert.ok(Number(error.headers?.get("retry-after")) > 0, "retry-after");
  });

  test("every candidate so: 503 upstream_overloaded on the chat door", async (t) => {
    const { first, second, gateway } = await scene(t);
    first.enqueue(CHAT_ROUTE, OPENAI_OVERLOAD);
    second.enqueue(CHAT_ROUTE, ANTHROPIC_OVERLOAD);
    const error = await rejection(streamedText(openAiClient(gateway)));
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.equal(error.status, 503, String(error));
    assert.equal(error.code, "upstream_overloaded");
    assert.ok(Number(error.headers?.get("retry-after-ms")) > 0, "retry-after-ms");
    assert.match(
      error.message,
      /Every candidate for `m` is overloaded.*first\/m: HTTP 200 in-band error: provider overloaded/,
    );
  });
});
