// OpenRouter's moderation 403 beyond a JSON chat request on the OpenAI client: one naming no reason (still the
// input's refusal, not the key's), the refusal a client gets when another candidate refused otherwise (the moderation
// one, which it can act on), a streamed request and the Messages door (Anthropic SDK). Real gateway, scripted mock
// upstreams over loopback.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import {
  CHAT_ROUTE,
  chatRequests,
  openAiClient,
  recordsOf,
  serveEveryChat,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import { chatCompletion, type MockStep } from "../helpers/mock-upstream.ts";
import { OPENROUTER_KEY, openRouterScene } from "../helpers/openrouter-scenes.ts";

function moderation403(reasons: readonly string[]): MockStep {
  return {
    kind: "json",
    status: 403,
    body: {
      error: {
        code: 403,
        message: "vendor/m:free requires moderation on Meta. Your input was flagged",
        metadata: { reasons, flagged_input: "i want to order eba", provider_name: "Meta", model_slug: "vendor/m:free" },
      },
    },
  };
}

/** `openrouter` serving `m` (priority 10) and `m2`, account-scoped as its preset is; `beta` serving `m` (priority 1). */
function scene(t: Parameters<typeof useMock>[0]) {
  return openRouterScene(t, { hasOpenRouterDialect: false, hasRequestLog: true });
}

describe("a moderation 403 whose reasons list is empty", () => {
  test("is the input's refusal: failed over, and the key's other models are still served (not parked)", async (t) => {
    const { openrouter, beta, gateway, client } = await scene(t);
    openrouter.enqueue(CHAT_ROUTE, moderation403([]));
    openrouter.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("OpenRouter here.", "vendor/m2:free") });
    serveEveryChat(beta, "From beta.");
    const first = await client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "i want to order eba" }],
    });
    assert.equal(first.choices[0]?.message.content, "From beta.");
    const other = await client.chat.completions.create({ model: "m2", messages: [{ role: "user", content: "Hi" }] });
    assert.equal(other.choices[0]?.message.content, "OpenRouter here.", "the key was not parked");
    const { records } = await recordsOf(gateway, "chat");
    const flagged = records.find((record) => record.attempts.length === 2);
    assert.equal(flagged?.attempts[0]?.outcome, "unsupported");
    assert.match(flagged?.attempts[0]?.reason ?? "", /requires moderation on Meta/);
  });
});

describe("the refusal a client gets when one candidate was moderated and another refused otherwise", () => {
  test("is the moderation 403 with its reasons, not the first candidate's 404", async (t) => {
    const alpha = await useMock(t);
    const openrouter = await useMock(t);
    const gateway = await useGateway(
      t,
      `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha
    retries: 0
    models:
      m: { id: alpha-m, priority: 10 }
  - name: openrouter
    base_url: ${openrouter.baseUrl}
    api_key: ${OPENROUTER_KEY}
    retries: 0
    models:
      m: { id: "vendor/m:free", priority: 1 }
routing:
  max_wait_for_better_ms: 0
`,
    );
    alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 404,
      body: { error: { message: "The model `alpha-m` does not exist", code: "model_not_found" } },
    });
    openrouter.enqueue(CHAT_ROUTE, moderation403(["harassment"]));
    const error = await openAiClient(gateway)
      .chat.completions.create({ model: "m", messages: [{ role: "user", content: "i want to order eba" }] })
      .then(
        () => assert.fail("expected an error"),
        (caught: unknown) => caught,
      );
    assert.equal(chatRequests(alpha).length, 1, "the first candidate was tried first");
    assert.ok(error instanceof OpenAI.PermissionDeniedError, String(error));
    assert.equal(error.status, 403);
    assert.match(error.message, /requires moderation on Meta.*Flagged for: harassment/);
    assert.equal((error.error as { metadata?: { provider?: string } }).metadata?.provider, "openrouter");
  });
});

describe("a moderation 403 on a streamed request", () => {
  test("fails over before anything is streamed: the client reads the next candidate's stream", async (t) => {
    const { openrouter, beta, client } = await scene(t);
    openrouter.enqueue(CHAT_ROUTE, moderation403(["misc"]));
    const stream = await client.chat.completions.create({
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "i want to order eba" }],
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    assert.equal(text, "echo from beta-m");
    assert.equal(chatRequests(openrouter).length, 1);
    assert.equal(chatRequests(beta).length, 1);
  });

  test("flagged on the only candidate: the client gets the 403 with its reasons, not a stream", async (t) => {
    const { openrouter, client } = await scene(t);
    openrouter.enqueue(CHAT_ROUTE, moderation403(["misc"]));
    const error = await client.chat.completions
      .create({ model: "m2", stream: true, messages: [{ role: "user", content: "i want to order eba" }] })
      .then(
        () => assert.fail("expected an error"),
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof OpenAI.PermissionDeniedError, String(error));
    assert.match(error.message, /Flagged for: misc/);
  });
});

describe("a moderation 403 through the Messages door (Anthropic SDK)", () => {
  test("fails over to the next candidate; flagged everywhere, the client gets Anthropic's 403 with the reasons", async (t) => {
    const { openrouter, beta, gateway } = await scene(t);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    openrouter.enqueue(CHAT_ROUTE, moderation403(["misc", "harassment"]));
    serveEveryChat(beta, "From beta.");
    const answer = await client.messages.create({
      model: "m",
      max_tokens: 100,
      messages: [{ role: "user", content: "i want to order eba" }],
    });
    assert.deepEqual(
      answer.content.map((block) => (block.type === "text" ? block.text : block.type)),
      ["From beta."],
    );
    assert.equal(chatRequests(openrouter).length, 1);
    openrouter.enqueue(CHAT_ROUTE, moderation403(["misc", "harassment"]));
    const error = await client.messages
      .create({ model: "m2", max_tokens: 100, messages: [{ role: "user", content: "i want to order eba" }] })
      .then(
        () => assert.fail("expected an error"),
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof Anthropic.PermissionDeniedError, String(error));
    assert.equal(error.status, 403);
    assert.match(error.message, /Flagged for: misc, harassment/);
  });
});
