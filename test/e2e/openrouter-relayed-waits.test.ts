// How long a model is left out after a 429 OpenRouter relays from the provider it routed to: the relay's own wait
// (`metadata.retry_after_seconds`, `metadata.headers`) or the provider's body, never OpenRouter's own headers (its
// x-ratelimit-reset is the account's window); and a body of any size the gateway read still yields its wait and its
// relay (limits/error-body.ts, limits/retry-hint.ts). Real gateway, scripted mock upstreams over loopback.
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { describe, test } from "node:test";
import { CHAT_ROUTE, chatRequests } from "../helpers/e2e.ts";
import { openRouterScene } from "../helpers/openrouter-scenes.ts";

/**
 * `openrouter` serving `m` (priority 10) and `m2`, account-scoped as its preset is, answering "OpenRouter here.";
 * `beta` serving `m` (priority 1), answering "From beta.".
 */
function scene(t: TestContext) {
  return openRouterScene(t, { openRouterAnswer: "OpenRouter here.", betaAnswer: "From beta." });
}

const HI = [{ role: "user" as const, content: "Hi" }];

describe("a relayed 429 with OpenRouter's own x-ratelimit-reset header (the account's window)", () => {
  test("does not keep the model out until the account's reset: no relayed wait, so the gateway's 1 s backoff", async (t) => {
    const { openrouter, client } = await scene(t);
    openrouter.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 429,
      headers: {
        "x-ratelimit-limit": "20",
        "x-ratelimit-remaining": "12",
        "x-ratelimit-reset": String(Date.now() + 3_600_000),
      },
      body: {
        error: {
          message: "Provider returned error",
          code: 429,
          metadata: { provider_name: "Together", is_byok: false },
        },
      },
    });
    const first = await client.chat.completions.create({ model: "m", messages: HI });
    assert.equal(first.choices[0]?.message.content, "From beta.");
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    const second = await client.chat.completions.create({ model: "m", messages: HI });
    assert.equal(second.choices[0]?.message.content, "OpenRouter here.", "not cooled for the account's hour");
    assert.equal(chatRequests(openrouter).length, 2);
  });
});

describe("a relayed 429 whose body is over 64 KB (the provider's body echoing a long prompt)", () => {
  test("still yields its relay and its wait: that model cools for the relay's 30 s, the key's other models do not", async (t) => {
    const { openrouter, beta, client } = await scene(t);
    const echo = `Rate limit reached for the prompt: ${"lorem ipsum ".repeat(8_000)}`;
    openrouter.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 429,
      body: {
        error: {
          message: "Provider returned error",
          code: 429,
          metadata: {
            raw: JSON.stringify({ error: { message: echo, code: "rate_limit_exceeded" } }),
            provider_name: "Groq",
            retry_after_seconds: 30,
          },
        },
      },
    });
    const first = await client.chat.completions.create({ model: "m", messages: HI });
    assert.equal(first.choices[0]?.message.content, "From beta.");
    const other = await client.chat.completions.create({ model: "m2", messages: HI });
    assert.equal(other.choices[0]?.message.content, "OpenRouter here.", "the key's pool was not cooled");
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    const again = await client.chat.completions.create({ model: "m", messages: HI });
    assert.equal(again.choices[0]?.message.content, "From beta.", "still cooling for the relay's 30 s");
    assert.equal(chatRequests(openrouter).length, 2);
    assert.equal(chatRequests(beta).length, 2);
  });
});
