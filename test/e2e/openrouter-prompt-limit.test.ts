// OpenRouter's per-request 402 "Prompt tokens limit exceeded: N > M": the prompt is larger than what the key's credits
// (or its limit) cover for this request. A refusal of this request's size, as "can only afford N" is of its output:
// failed over with nothing parked or cooled (a shorter prompt is still served by the same key and model), and when
// every candidate refuses it so, the client gets a 413 in its own protocol, never a 429 to retry. Real gateway,
// scripted mock upstreams over loopback, the official OpenAI and Anthropic clients.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { CHAT_ROUTE, chatRequests } from "../helpers/e2e.ts";
import { chatCompletion, type MockStep } from "../helpers/mock-upstream.ts";
import { OPENROUTER_KEY, openRouter402, openRouterScene } from "../helpers/openrouter-scenes.ts";

/** OpenRouter's 402, as it words it (continuedev/continue#11227). */
function promptTooLarge(promptTokens: number, affordable: number): MockStep {
  return openRouter402(
    `Prompt tokens limit exceeded: ${promptTokens} > ${affordable}. To increase, visit https://openrouter.ai/settings/credits and upgrade to a paid account`,
  );
}

/** The error the gateway answers a chat request with (the test fails if it answers). */
async function chatError(
  client: OpenAI,
  body: Omit<OpenAI.ChatCompletionCreateParamsNonStreaming, "messages">,
): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await client.chat.completions.create({ ...body, messages: [{ role: "user", content: "Hi" }] }).then(
    () => assert.fail("expected an error"),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof OpenAI.APIError, String(error));
  return error;
}

const MODELS = { m: { id: "vendor/m", priority: 10 }, m2: { id: "vendor/m2", priority: 10 } };

describe("OpenRouter's 402 'Prompt tokens limit exceeded'", () => {
  test("chat: failed over, nothing parked: the key's other model and the same model with a short prompt are served", async (t) => {
    const { openrouter, beta, client } = await openRouterScene(t, {
      models: MODELS,
      betaAnswer: "From beta.",
      openRouterAnswer: "OpenRouter here.",
    });
    openrouter.enqueue(CHAT_ROUTE, promptTooLarge(64128, 6964));
    const long = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hi" }] });
    assert.equal(long.choices[0]?.message.content, "From beta.", "failed over");
    const other = await client.chat.completions.create({ model: "m2", messages: [{ role: "user", content: "Hi" }] });
    assert.equal(other.choices[0]?.message.content, "OpenRouter here.", "the key is not parked");
    const short = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hi" }] });
    assert.equal(short.choices[0]?.message.content, "OpenRouter here.", "the model is not cooled");
    assert.equal(chatRequests(openrouter).length, 3);
    assert.equal(chatRequests(beta).length, 1);
  });

  test("chat, every candidate refusing the prompt's size: a 413 request_too_large naming the prompt, no retry-after", async (t) => {
    const { openrouter, client } = await openRouterScene(t, { models: MODELS, beta: false });
    openrouter.enqueue(CHAT_ROUTE, promptTooLarge(64128, 6964));
    const error = await chatError(client, { model: "m" });
    assert.equal(error.status, 413, error.message);
    assert.equal(error.code, "request_too_large");
    assert.equal(error.headers?.get("retry-after") ?? undefined, undefined);
    assert.match(error.message, /cover a prompt of 6964 tokens, not this request's 64128/);
    assert.ok(!error.message.includes(OPENROUTER_KEY));
    assert.equal(chatRequests(openrouter).length, 1, "no retry of the same prompt");
    // Nothing parked: the same model answers the next (shorter) request.
    openrouter.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("OpenRouter here.", "vendor/m") });
    const next = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hi" }] });
    assert.equal(next.choices[0]?.message.content, "OpenRouter here.");
  });

  test("chat without max_tokens, every candidate refusing the prompt's size: advised a shorter prompt, not a max_tokens", async (t) => {
    // The client sent no output limit, and no output limit makes a prompt fit: "a smaller max_tokens" cannot help.
    const { openrouter, client } = await openRouterScene(t, { models: MODELS, beta: false });
    openrouter.enqueue(CHAT_ROUTE, promptTooLarge(64128, 6964));
    const error = await chatError(client, { model: "m" });
    assert.equal(error.status, 413, error.message);
    assert.doesNotMatch(error.message, /max_tokens/, error.message);
    assert.match(error.message, /send a shorter prompt \(of at most ~6964 tokens\), or add credits/i);
    // With the client's own max_tokens too: the refusal is of the prompt all the same.
    openrouter.enqueue(CHAT_ROUTE, promptTooLarge(64128, 6964));
    const limited = await chatError(client, { model: "m", max_tokens: 100 });
    assert.equal(limited.status, 413, limited.message);
    assert.doesNotMatch(limited.message, /smaller max_tokens/, limited.message);
    assert.match(limited.message, /shorter prompt/);
  });

  test("Messages door, every candidate refusing the prompt's size: a 413 in Anthropic's shape (request_too_large)", async (t) => {
    const { openrouter, gateway } = await openRouterScene(t, { models: MODELS, beta: false });
    openrouter.enqueue(CHAT_ROUTE, promptTooLarge(230799, 91442));
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const error = await client.messages
      .create({ model: "m", max_tokens: 100, messages: [{ role: "user", content: "Hi" }] })
      .then(
        () => assert.fail("expected an error"),
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof Anthropic.APIError, String(error));
    assert.equal(error.status, 413, error.message);
    const body = error.error as { type?: string; error?: { type?: string; message?: string } };
    assert.equal(body.error?.type, "request_too_large");
    assert.match(body.error?.message ?? "", /cover a prompt of 91442 tokens, not this request's 230799/);
    assert.equal(chatRequests(openrouter).length, 1);
  });

  test("Responses door, every candidate refusing the prompt's size: a 413 request_too_large", async (t) => {
    const { openrouter, client } = await openRouterScene(t, { models: MODELS, beta: false });
    openrouter.enqueue(CHAT_ROUTE, promptTooLarge(64128, 6964));
    const error = await client.responses.create({ model: "m", input: "Hi" }).then(
      () => assert.fail("expected an error"),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.equal(error.status, 413, error.message);
    assert.match(error.message, /cover a prompt of 6964 tokens/);
  });
});
