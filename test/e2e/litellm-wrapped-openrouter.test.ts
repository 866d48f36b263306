// LiteLLM's proxy in front of OpenRouter answers OpenRouter's errors wrapped in its own: `{"error":{"message":
// "litellm.RateLimitError: RateLimitError: OpenrouterException - {<OpenRouter's body>}", "type":null, "param":null,
// "code":"429"}}`. The wrapped body is read as OpenRouter's (limits/error-body.ts proxiedErrorBody): a 429 OpenRouter
// relays from the provider it routed to cools that model for the relay's wait, not the key's pool, and a relayed
// refusal reaches the client in the provider's own words. Real gateway, scripted mock upstreams over loopback.
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { CHAT_ROUTE, chatRequests } from "../helpers/e2e.ts";
import type { MockStep } from "../helpers/mock-upstream.ts";
import { openRouterScene } from "../helpers/openrouter-scenes.ts";

/** LiteLLM's proxy error wrapping OpenRouter's body, as its router words it. */
function wrapped(status: number, exception: string, openRouterBody: unknown): MockStep {
  return {
    kind: "json",
    status,
    body: {
      error: {
        message: `litellm.${exception}: ${exception}: OpenrouterException - ${JSON.stringify(openRouterBody)}\nReceived Model Group=openrouter/m\nAvailable Model Group Fallbacks=None`,
        type: null,
        param: null,
        code: String(status),
      },
    },
  };
}

/**
 * `litellm` serving `m` (priority 10) and `m2`, its key's pool account-wide, answering "LiteLLM here."; `beta`
 * serving `m` (priority 1), answering "From beta.".
 */
async function scene(t: TestContext) {
  const { openrouter, beta, client } = await openRouterScene(t, {
    name: "litellm",
    apiKey: "sk-litellm-master",
    models: { m: { id: "openrouter/vendor/m", priority: 10 }, m2: { id: "openrouter/vendor/m2", priority: 10 } },
    hasOpenRouterDialect: false,
    openRouterAnswer: "LiteLLM here.",
    betaAnswer: "From beta.",
  });
  return { litellm: openrouter, beta, client };
}

const HI = [{ role: "user" as const, content: "Hi" }];

describe("an OpenRouter error wrapped by LiteLLM", () => {
  test("a 429 OpenRouter relays: that model cools for the relay's wait, the key's other models are served", async (t) => {
    const { litellm, beta, client } = await scene(t);
    litellm.enqueue(
      CHAT_ROUTE,
      wrapped(429, "RateLimitError", {
        error: {
          message: "Provider returned error",
          code: 429,
          metadata: { provider_name: "Together", is_byok: false, retry_after_seconds: 30 },
        },
        user_id: "user_2abc",
      }),
    );
    const first = await client.chat.completions.create({ model: "m", messages: HI });
    assert.equal(first.choices[0]?.message.content, "From beta.");
    const other = await client.chat.completions.create({ model: "m2", messages: HI });
    assert.equal(other.choices[0]?.message.content, "LiteLLM here.", "the key's pool was not cooled");
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    const again = await client.chat.completions.create({ model: "m", messages: HI });
    assert.equal(again.choices[0]?.message.content, "From beta.", "still cooling for the relay's 30 s");
    assert.equal(chatRequests(litellm).length, 2);
    assert.equal(chatRequests(beta).length, 2);
  });

  test("a relayed refusal reaches the client as the routed provider's, named, with its code and param", async (t) => {
    const { litellm, beta, client } = await scene(t);
    const raw = JSON.stringify({
      error: {
        message: "Invalid value for 'temperature': must be <= 1",
        type: "invalid_request_error",
        param: "temperature",
        code: "invalid_value",
      },
    });
    litellm.enqueue(
      CHAT_ROUTE,
      wrapped(400, "BadRequestError", {
        error: { message: "Provider returned error", code: 400, metadata: { raw, provider_name: "Mistral" } },
      }),
    );
    const error = await client.chat.completions.create({ model: "m2", temperature: 1.5, messages: HI }).then(
      () => assert.fail("expected an error"),
      (caught: unknown) => caught,
    );
    assert.ok(error instanceof OpenAI.BadRequestError, String(error));
    assert.match(error.message, /^400 Mistral \(via litellm\): Invalid value for 'temperature': must be <= 1$/);
    assert.equal(error.code, "invalid_value");
    assert.equal(error.param, "temperature");
    assert.equal(chatRequests(beta).length, 0);
  });
});

describe("a body that only quotes such a wrapper", () => {
  // A developer pastes the error their proxy gave them; a validator's 400 quotes the content back. The wrapper's
  // words are LiteLLM's message's start (its class names, then `<Provider>Exception - {`), never a quote inside
  // another message: read as one, the quoted JSON's `model_not_found` was this provider's answer, and the model was
  // left out of it for every request, on a client's words.
  const pasted = 'Why does my proxy say OpenrouterException - {"error":{"message":"nope","code":"model_not_found"}}?';

  test("is the upstream's own refusal: the client's 400, nothing left out", async (t) => {
    const { litellm, beta, client } = await scene(t);
    const refusal = (): MockStep => ({
      kind: "json",
      status: 400,
      body: {
        error: {
          message: `Invalid 'messages[0].content': the content '${pasted}' was rejected by the content validator`,
          type: "invalid_request_error",
          code: "invalid_value",
          param: "messages",
        },
      },
    });
    litellm.enqueue(CHAT_ROUTE, refusal());
    const error = await client.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: pasted }] })
      .then(
        () => assert.fail("expected an error"),
        (caught: unknown) => caught,
      );
    assert.ok(error instanceof OpenAI.BadRequestError, String(error));
    assert.match(error.message, /rejected by the content validator/);
    assert.equal(error.code, "invalid_value");
    assert.equal(chatRequests(beta).length, 0, "not failed over as the model's absence");
    const next = await client.chat.completions.create({ model: "m", messages: HI });
    assert.equal(next.choices[0]?.message.content, "LiteLLM here.", "the model was not left out");
    // Plain text alike: the wrapper is the whole text's start, not a quote inside it.
    litellm.enqueue(CHAT_ROUTE, { kind: "text", status: 400, body: `Bad request: content '${pasted}' rejected` });
    const plain = await client.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: pasted }] })
      .then(
        () => assert.fail("expected an error"),
        (caught: unknown) => caught,
      );
    assert.ok(plain instanceof OpenAI.BadRequestError, String(plain));
    assert.equal(chatRequests(beta).length, 0);
  });
});
