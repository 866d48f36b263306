// The advice of a 413 request_too_large names only what the client controls: what it sent (its prompt, its own
// max_tokens) and, when the gateway's own token budget left a candidate out, that this budget is the binding limit.
// A client that sent no max_tokens was told to send "a smaller max_tokens". Real gateway, scripted mock upstreams
// over loopback, the official OpenAI and Anthropic clients.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { CHAT_ROUTE, chatRequests } from "../helpers/e2e.ts";
import { openRouter402, openRouterScene } from "../helpers/openrouter-scenes.ts";

// OpenRouter's model refuses the prompt for the key's credits; beta's tpm budget (the gateway's) is smaller than it.
const SCENE = {
  models: { m: { id: "vendor/m", priority: 10 } },
  beta: { id: "beta-m", priority: 1, limits: { tpm: 20 } },
} as const;
const LONG_PROMPT = "word ".repeat(200);
const PROMPT_REFUSED = openRouter402(
  "Prompt tokens limit exceeded: 64128 > 6964. To increase, visit https://openrouter.ai/settings/credits and upgrade to a paid account",
);

describe("413 advice when a token budget refused the request alongside a provider", () => {
  test("Chat Completions without max_tokens: the gateway's budget is named, no smaller max_tokens", async (t) => {
    const { openrouter, beta, client } = await openRouterScene(t, SCENE);
    openrouter.enqueue(CHAT_ROUTE, PROMPT_REFUSED);
    const error = await client.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: LONG_PROMPT }] })
      .then(
        () => assert.fail("expected an error"),
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.equal(error.status, 413, error.message);
    assert.equal(error.code, "request_too_large");
    assert.doesNotMatch(error.message, /max_tokens/, "the client sent none");
    assert.match(error.message, /gateway's own token budget for beta\/m is the binding limit/);
    assert.match(error.message, /send a shorter prompt, or ask the gateway's operator to raise that budget/);
    assert.equal(chatRequests(openrouter).length, 1);
    assert.equal(chatRequests(beta).length, 0, "the budget left beta out");
  });

  test("Messages door (max_tokens always sent): the budget named, in Anthropic's error shape", async (t) => {
    const { openrouter, gateway } = await openRouterScene(t, SCENE);
    openrouter.enqueue(CHAT_ROUTE, PROMPT_REFUSED);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const error = await client.messages
      .create({ model: "m", max_tokens: 100, messages: [{ role: "user", content: LONG_PROMPT }] })
      .then(
        () => assert.fail("expected an error"),
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof Anthropic.APIError, String(error));
    assert.equal(error.status, 413, error.message);
    const body = error.error as { type?: string; error?: { type?: string; message?: string } };
    assert.equal(body.type, "error");
    assert.equal(body.error?.type, "request_too_large");
    const message = body.error?.message ?? "";
    assert.match(message, /gateway's own token budget for beta\/m is the binding limit/);
    // The client sent its max_tokens: lowering it is in its hands.
    assert.match(message, /send a shorter prompt or a smaller max_tokens, or ask the gateway's operator/);
  });
});

describe("413 advice names the output limit under the client's own name", () => {
  test("Responses door with max_output_tokens: told of max_output_tokens, not of a max_tokens it never sent", async (t) => {
    const { openrouter, client } = await openRouterScene(t, SCENE);
    openrouter.enqueue(CHAT_ROUTE, PROMPT_REFUSED);
    const error = await client.responses.create({ model: "m", input: LONG_PROMPT, max_output_tokens: 100 }).then(
      () => assert.fail("expected an error"),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.equal(error.status, 413, error.message);
    assert.match(error.message, /gateway's own token budget for beta\/m is the binding limit/);
    assert.match(error.message, /send a shorter prompt or a smaller max_output_tokens/);
    assert.doesNotMatch(error.message, /smaller max_tokens/, "a Responses client has no max_tokens");
  });

  test("Chat Completions with max_completion_tokens: told of max_completion_tokens", async (t) => {
    const { openrouter, client } = await openRouterScene(t, SCENE);
    openrouter.enqueue(CHAT_ROUTE, PROMPT_REFUSED);
    const error = await client.chat.completions
      .create({ model: "m", max_completion_tokens: 100, messages: [{ role: "user", content: LONG_PROMPT }] })
      .then(
        () => assert.fail("expected an error"),
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof OpenAI.APIError, String(error));
    assert.equal(error.status, 413, error.message);
    assert.match(error.message, /send a shorter prompt or a smaller max_completion_tokens/);
    assert.doesNotMatch(error.message, /smaller max_tokens/, "the client sent max_completion_tokens");
  });
});
