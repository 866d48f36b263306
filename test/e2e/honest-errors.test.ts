// Honest errors (docs/errors.md): 429 only when limits are all that stand in the way; failing candidates (open
// circuits, 5xx) give 503 upstream_unavailable (502 when attempts were made), with retry-after when known; an
// upstream's own 400 arrives word for word, with where it came from in error.metadata and headers.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import OpenAI from "openai";
import { errorOf } from "../helpers/e2e.ts";
import { assertServedBy, startScene } from "../helpers/limits-scene.ts";
import { chatCompletion, type MockStep, rateLimited } from "../helpers/mock-upstream.ts";

const CHAT_ROUTE = "POST /v1/chat/completions";

const SERVER_ERROR: MockStep = {
  kind: "json",
  status: 500,
  body: { error: { message: "internal error", type: "server_error", code: null, param: null } },
};

describe("honest errors", () => {
  test("circuits opened by 5xx give 503 upstream_unavailable with retry-after, not a 429", async (t) => {
    const scene = await startScene(t, {
      beta: false,
      config: { cooldowns: { failure_threshold: 3, circuit_first_probe_ms: 5_000 } },
    });
    scene.alpha.enqueue(CHAT_ROUTE, SERVER_ERROR, SERVER_ERROR, SERVER_ERROR);
    for (let index = 0; index < 3; index++) {
      const failed = await scene.chat();
      assert.equal(failed.status, 502, "attempts were made and failed: 502");
      assert.equal(errorOf(failed).code, "upstream_unavailable");
    }
    assert.equal((await scene.stats("alpha")).circuit, "open");
    const refused = await scene.chat();
    assert.equal(refused.status, 503, refused.text);
    const error = errorOf(refused);
    assert.equal(error.code, "upstream_unavailable");
    assert.equal(error.type, "upstream_error");
    assert.equal(refused.headers["retry-after"], "5", "retry-after: when the next probe is due");
    assert.equal(scene.counts().alpha, 3, "no upstream request while the circuit is open");

    // The SDK sees a server error (and would retry as for one), not a RateLimitError.
    const client = new OpenAI({ baseURL: scene.gateway.baseUrl, apiKey: "x", maxRetries: 0 });
    await assert.rejects(
      client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] }),
      (thrown: unknown) => thrown instanceof OpenAI.InternalServerError && thrown.status === 503,
    );
  });

  test("limits alone give 429 rate_limit_exceeded with retry-after", async (t) => {
    const scene = await startScene(t, { beta: false });
    scene.alpha.enqueue(CHAT_ROUTE, rateLimited({ headers: { "retry-after": "7" } }));
    const first = await scene.chat();
    assert.equal(first.status, 429, first.text);
    const cooling = await scene.chat();
    assert.equal(cooling.status, 429, cooling.text);
    assert.equal(errorOf(cooling).code, "rate_limit_exceeded");
    assert.ok(Number(cooling.headers["retry-after"]) >= 6, `retry-after ${cooling.headers["retry-after"]}`);
  });

  test("one candidate rate-limited and the other's circuit open: 503, not 429", async (t) => {
    const scene = await startScene(t, {
      config: { cooldowns: { failure_threshold: 1, circuit_first_probe_ms: 5_000 } },
    });
    scene.alpha.enqueue(CHAT_ROUTE, SERVER_ERROR);
    scene.beta.enqueue(CHAT_ROUTE, rateLimited({ headers: { "retry-after": "9" } }));
    const failed = await scene.chat();
    assert.equal(failed.status, 502, failed.text);
    const refused = await scene.chat();
    assert.equal(refused.status, 503, refused.text);
    assert.equal(errorOf(refused).code, "upstream_unavailable");
    assert.equal(refused.headers["retry-after"], "5", "the soonest candidate: alpha's probe");
  });

  test("an upstream 400's message arrives unchanged, with error.metadata and provider headers", async (t) => {
    const scene = await startScene(t, { alpha: { api_key: "sk-alpha-secret" } });
    const message = "Invalid 'n': must be at most 2.\nSee the docs.";
    scene.alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: { error: { message, type: "invalid_request_error", param: "n", code: null }, key: "sk-alpha-secret" },
    });
    const response = await scene.chat({ n: 9 });
    assert.equal(response.status, 400, response.text);
    const error = errorOf(response) as ReturnType<typeof errorOf> & {
      metadata?: { provider: string; model: string; raw: string };
    };
    assert.equal(error.message, message, "word for word: no suffix, whitespace kept");
    assert.equal(error.param, "n");
    assert.deepEqual(Object.keys(error.metadata ?? {}).sort(), ["model", "provider", "raw"]);
    assert.equal(error.metadata?.provider, "alpha");
    assert.equal(error.metadata?.model, "alpha-model");
    assert.match(error.metadata?.raw ?? "", /must be at most 2/);
    assert.ok(!response.text.includes("sk-alpha-secret"), "the key is redacted from raw");
    assert.equal(response.headers["x-gateway-provider"], "alpha");
    assert.equal(response.headers["x-gateway-model"], "alpha-model");
    assert.equal(scene.counts().beta, 0);
    scene.alpha.setDefault(CHAT_ROUTE, { kind: "json", body: chatCompletion("ok", "alpha-model") });
    assertServedBy(await scene.chat(), "alpha");
  });

  test("a long upstream 400 is cut on a character boundary: message and raw hold no half emoji", async (t) => {
    const scene = await startScene(t, { beta: false });
    // The message is cut to 8,000 UTF-16 units and error.metadata.raw (the body, which starts `{"error":{"message":"`,
    // 21 units) to 4,000; each emoji straddles one cut. Half an emoji is written as an escaped lone surrogate, which
    // strict JSON readers (serde_json) refuse.
    const emoji = "\u{1F600}";
    const message = `${"a".repeat(3977)}${emoji}${"b".repeat(4019)}${emoji}${"c".repeat(100)}`;
    scene.alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 400,
      body: { error: { message, type: "invalid_request_error", param: null, code: null } },
    });
    const response = await scene.chat();
    assert.equal(response.status, 400, response.text);
    const error = errorOf(response) as ReturnType<typeof errorOf> & { metadata?: { raw: string } };
    assert.ok(error.message.isWellFormed(), `message ends ${JSON.stringify(error.message.slice(-4))}`);
    assert.equal(error.message, `${"a".repeat(3977)}${emoji}${"b".repeat(4019)}…`);
    const raw = error.metadata?.raw ?? "";
    assert.ok(raw.isWellFormed(), `raw ends ${JSON.stringify(raw.slice(-4))}`);
    assert.ok(raw.endsWith(`${"a".repeat(100)}…`), raw.slice(-20));
  });
});
