// Anthropic's prompt-cache pre-warming (`max_tokens: 0` on /v1/messages) exists to reach the provider: each warm-up
// keeps its prompt cache alive. With the gateway's answer cache on, a repeated warm-up answered from that cache never
// reached the provider, whose prompt cache could then expire between warm-ups. Real gateway, mock upstream over
// loopback, the Anthropic SDK.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { chatRequests, serveEveryChat, useGateway, useMock } from "../helpers/e2e.ts";

const CLIENT_KEY = "client-key-prewarm";

describe("messages API: a `max_tokens: 0` pre-warm and the answer cache", () => {
  test("every pre-warm reaches the provider, and none is kept, while an ordinary request is still cached", async (t) => {
    const mock = await useMock(t);
    serveEveryChat(mock, "Sure");
    const gateway = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
  api_keys: [${CLIENT_KEY}]
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: { id: alpha-m }
cache:
  enabled: true
`,
    );
    const client = new Anthropic({ baseURL: gateway.url, apiKey: CLIENT_KEY, maxRetries: 0 });
    const prompt = {
      model: "m",
      system: "A long system prompt worth caching.",
      messages: [{ role: "user" as const, content: "Warm up" }],
    };

    for (let warmUp = 1; warmUp <= 2; warmUp += 1) {
      const { data, response } = await client.messages.create({ ...prompt, max_tokens: 0 }).withResponse();
      assert.deepEqual(data.content, []);
      assert.equal(response.headers.get("x-gateway-cache"), null, `warm-up ${warmUp} neither looked up nor kept`);
      assert.equal(chatRequests(mock).length, warmUp, `warm-up ${warmUp} reached the provider`);
    }

    // `only-if-cached` with a pre-warm: never given a kept answer, so a 504 saying why, and nothing sent upstream.
    await assert.rejects(
      client.messages.create({ ...prompt, max_tokens: 0 }, { headers: { "cache-control": "only-if-cached" } }),
      (error: { status?: number; message?: string }) =>
        error.status === 504 && /max_tokens of 0/.test(error.message ?? ""),
    );
    assert.equal(chatRequests(mock).length, 2);

    // The cache is on: the same prompt asking for an answer is kept and given again without the provider.
    await client.messages.create({ ...prompt, max_tokens: 16 });
    const { response } = await client.messages.create({ ...prompt, max_tokens: 16 }).withResponse();
    assert.equal(response.headers.get("x-gateway-cache"), "hit");
    assert.equal(chatRequests(mock).length, 3);
  });
});
