// A refused client learns which window refused each candidate: the final 429's message names every skipped
// candidate's reason in the route explanation's words (an rpm budget, a cooldown learned from a 429 and where its
// wait came from), at every door (OpenAI's error JSON, Anthropic's on /v1/messages, Responses), after the message's
// usual start and with Retry-After kept, and without a key; a 503 names the open circuit. A manual clock makes every
// time exact.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { ManualClock } from "../../src/clock.ts";
import { errorOf, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import { assertServedBy, startScene } from "../helpers/limits-scene.ts";
import { chatCompletion, rateLimited } from "../helpers/mock-upstream.ts";

const START_MS = Date.UTC(2026, 0, 1, 12);
const CHAT_ROUTE = "POST /v1/chat/completions";
const HI = [{ role: "user" as const, content: "hi" }];

const START =
  /^Every candidate for `m` is rate-limited or cooling down; the first is available again in 50 s \(alpha\/m at 2026-01-01T12:01:00\.000Z\)\./;
const BOTH_RPM =
  /Skipped: alpha\/m: over its rpm budget \(1\/1\) until 2026-01-01T12:01:00\.000Z; beta\/m: over its rpm budget \(1\/1\) until 2026-01-01T12:01:10\.000Z\./;

function assertNoKey(message: string): void {
  assert.doesNotMatch(message, /sk-alpha-secret|sk-beta-secret/);
}

describe("the final 429 names why each candidate was skipped", () => {
  test("rpm budgets, at the three doors: OpenAI's error JSON, Responses, and Anthropic's on /v1/messages", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, {
      clock,
      alphaModel: { limits: { rpm: 1 } },
      betaModel: { limits: { rpm: 1 } },
    });
    assertServedBy(await scene.chat(), "alpha");
    clock.advance(10_000);
    assertServedBy(await scene.chat(), "beta");

    const refused = await scene.chat();
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.headers["retry-after"], "50");
    const message = errorOf(refused).message;
    assert.match(message, START);
    assert.match(message, BOTH_RPM);
    assertNoKey(refused.text);

    const openai = new OpenAI({ baseURL: `${scene.gateway.url}/v1`, apiKey: "x", maxRetries: 0 });
    const responses = await openai.responses.create({ model: "m", input: "hi" }).then(
      () => assert.fail("the Responses call was served over two spent budgets"),
      (error: unknown) => error,
    );
    assert.ok(responses instanceof OpenAI.RateLimitError, String(responses));
    assert.match(responses.message, BOTH_RPM);
    assert.equal(responses.headers?.get("retry-after"), "50");

    const anthropic = new Anthropic({ baseURL: scene.gateway.url, apiKey: "x", maxRetries: 0 });
    const messages = await anthropic.messages.create({ model: "m", max_tokens: 16, messages: HI }).then(
      () => assert.fail("the Messages call was served over two spent budgets"),
      (error: unknown) => error,
    );
    assert.ok(messages instanceof Anthropic.RateLimitError, String(messages));
    assert.equal(messages.status, 429);
    assert.equal(messages.headers?.get("retry-after"), "50");
    // Anthropic's error shape: {"type":"error","error":{"type":"rate_limit_error","message":...}}.
    const body = messages.error as { type: string; error: { type: string; message: string } };
    assert.equal(body.type, "error");
    assert.equal(body.error.type, "rate_limit_error");
    assert.match(body.error.message, START);
    assert.match(body.error.message, BOTH_RPM);
    assert.match(messages.message, /over its rpm budget \(1\/1\)/);
    assertNoKey(JSON.stringify(body));
    assert.deepEqual(scene.counts(), { alpha: 1, beta: 1 });
  });

  test("a cooldown learned from a 429 says where its wait came from: the provider's retry-after, or a guess", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, { clock });
    scene.alpha.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "30" }));
    scene.beta.enqueue(CHAT_ROUTE, rateLimited());
    const first = await scene.chat();
    assert.equal(first.status, 429, first.text);

    const refused = await scene.chat();
    assert.equal(refused.status, 429, refused.text);
    assert.equal(scene.counts().alpha, 1, "alpha was asked again while cooling");
    const message = errorOf(refused).message;
    assert.match(message, /^Every candidate for `m` is rate-limited or cooling down; the first is available again in/);
    assert.match(
      message,
      /alpha\/m: [^;]*; cooling down for the wait in the provider's retry-after header until 2026-01-01T12:00:30\.000Z/,
    );
    assert.match(message, /beta\/m: [^;]*; cooling down for the gateway's backoff \(no retry hint\) until /);
    assertNoKey(refused.text);

    // The route explanation gives the same words.
    const route = await send(scene.gateway, "GET", "/v1/gateway/route?model=m");
    assert.equal(route.status, 200, route.text);
    const skipped = (route.json as { skipped: { provider: string; reason: string }[] }).skipped;
    const alphaReason = skipped.find((skip) => skip.provider === "alpha")?.reason ?? "";
    assert.match(alphaReason, /cooling down for the wait in the provider's retry-after header$/);
    assert.ok(message.includes(`alpha/m: ${alphaReason}`), `${message} does not say ${alphaReason}`);
  });

  test("a wait the provider gave only in its error body is named as such", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, { clock, beta: false });
    scene.alpha.enqueue(
      CHAT_ROUTE,
      rateLimited({
        body: { error: { message: "Rate limit reached. Please try again in 20s.", code: "rate_limit_exceeded" } },
      }),
    );
    assert.equal((await scene.chat()).status, 429);
    const refused = await scene.chat();
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.headers["retry-after"], "20");
    assert.match(
      errorOf(refused).message,
      /Skipped: alpha\/m: [^;]*; cooling down for the wait in the provider's error body until 2026-01-01T12:00:20\.000Z\.$/,
    );
    assert.equal(scene.counts().alpha, 1);
  });

  test("a provider's key echoed in a 429's body (a quota id) is not in the reason the client is given", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, { clock, beta: false });
    scene.alpha.enqueue(
      CHAT_ROUTE,
      rateLimited({
        retryAfter: "30",
        body: {
          error: {
            code: 429,
            status: "RESOURCE_EXHAUSTED",
            message: "You exceeded your current quota, please check your plan and billing details.",
            details: [
              {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                violations: [{ quotaId: "PerMinuteFor-sk-alpha-secret" }],
              },
            ],
          },
        },
      }),
    );
    assert.equal((await scene.chat()).status, 429);
    const refused = await scene.chat();
    assert.equal(refused.status, 429, refused.text);
    const message = errorOf(refused).message;
    // The quota id is named (which window refused), with the key in it redacted.
    assert.match(
      message,
      /Skipped: alpha\/m: Gemini quota PerMinuteFor-\[redacted\] exhausted; cooling down for the wait in the provider's retry-after header/,
    );
    assertNoKey(refused.text);
  });

  test("a 429's long quoted text is cut at 300 characters wherever the reason is shown, kept whole in the record", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, { clock, beta: false });
    // A Gemini quota id of 4 KB: the cooldown's reason quotes it (an upstream may send anything there).
    const quotaId = `PerMinute${"x".repeat(4096)}`;
    scene.alpha.enqueue(
      CHAT_ROUTE,
      rateLimited({
        retryAfter: "30",
        body: {
          error: {
            code: 429,
            status: "RESOURCE_EXHAUSTED",
            message: "You exceeded your current quota.",
            details: [{ "@type": "type.googleapis.com/google.rpc.QuotaFailure", violations: [{ quotaId }] }],
          },
        },
      }),
    );
    const first = await scene.chat();
    assert.equal(first.status, 429, first.text);
    const cut = (reason: string, where: string): void => {
      assert.equal(reason.length, 300, `${where}: ${reason.length} characters`);
      assert.match(reason, /^Gemini quota PerMinutex+…$/, where);
    };
    const refused = await scene.chat();
    assert.equal(refused.status, 429, refused.text);
    assert.ok(errorOf(refused).message.length < 1_000, `${errorOf(refused).message.length} characters`);

    const health = await scene.health();
    cut(health.providers.cooling.find((cooling) => cooling.name === "alpha")?.reason ?? "", "/health providers");
    cut(health.deployments.find((row) => row.key === "alpha/m")?.cooldown?.reason ?? "", "/health deployments");
    cut((await scene.stats("alpha")).cooldown?.reason ?? "", "/stats");

    const route = await send(scene.gateway, "GET", "/v1/gateway/route?model=m");
    assert.equal(route.status, 200, route.text);
    const skipped = (route.json as { skipped: { provider: string; reason: string }[] }).skipped;
    const explained = skipped.find((skip) => skip.provider === "alpha")?.reason ?? "";
    cut(explained, "/v1/gateway/route");
    // The refusal lists the same cut reason as the explanation (one function, one text).
    assert.ok(errorOf(refused).message.includes(`alpha/m: ${explained}`), errorOf(refused).message);

    // The request's record (the operator's full evidence) keeps what the provider said whole.
    const listed = await send(scene.gateway, "GET", "/v1/gateway/requests?limit=10");
    assert.equal(listed.status, 200, listed.text);
    assert.ok(listed.text.includes(quotaId), "the request record lost the quota id");
  });

  test("the 300-character cut never splits a character outside the BMP (no lone surrogate in a client's JSON)", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, { clock, beta: false });
    // "Gemini quota PerMinute" is 22 characters: the emoji's two UTF-16 units are the 299th and 300th of the reason,
    // where the cut (299 units and "…") falls. Half an emoji is no text: serde_json refuses the escaped lone
    // surrogate JSON.stringify writes for it, so a Rust client could not even read the error.
    const quotaId = `PerMinute${"x".repeat(276)}\u{1F600}${"x".repeat(4096)}`;
    scene.alpha.enqueue(
      CHAT_ROUTE,
      rateLimited({
        retryAfter: "30",
        body: {
          error: {
            code: 429,
            status: "RESOURCE_EXHAUSTED",
            message: "You exceeded your current quota.",
            details: [{ "@type": "type.googleapis.com/google.rpc.QuotaFailure", violations: [{ quotaId }] }],
          },
        },
      }),
    );
    assert.equal((await scene.chat()).status, 429);
    const whole = (text: string, where: string): void => {
      assert.ok(text.isWellFormed(), `${where}: a lone surrogate in ${JSON.stringify(text.slice(-8))}`);
      assert.ok(text.includes(`PerMinute${"x".repeat(276)}…`), `${where}: ${text.slice(0, 320)}`);
    };
    const refused = await scene.chat();
    assert.equal(refused.status, 429, refused.text);
    whole(errorOf(refused).message, "the 429's message");
    const health = await scene.health();
    whole(health.providers.cooling.find((cooling) => cooling.name === "alpha")?.reason ?? "", "/health providers");
    whole(health.deployments.find((row) => row.key === "alpha/m")?.cooldown?.reason ?? "", "/health deployments");
    whole((await scene.stats("alpha")).cooldown?.reason ?? "", "/stats");
    const route = await send(scene.gateway, "GET", "/v1/gateway/route?model=m");
    const skipped = (route.json as { skipped: { provider: string; reason: string }[] }).skipped;
    whole(skipped.find((skip) => skip.provider === "alpha")?.reason ?? "", "/v1/gateway/route");
  });

  test("a named client's own budget: its refusal names the window and no other client", async (t) => {
    const clock = new ManualClock(START_MS);
    const upstream = await useMock(t);
    const gateway = await useGateway(
      t,
      `server:
  api_keys:
    - { key: greedy-secret-key, name: greedy, limits: { rpm: 1 } }
    - { key: other-secret-key, name: other }
providers:
  - name: alpha
    base_url: ${upstream.baseUrl}
    api_key: sk-alpha-secret
    models:
      m: { id: alpha-m }
`,
      { clock },
    );
    upstream.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    const greedy = { authorization: "Bearer greedy-secret-key" };
    assert.equal((await postChat(gateway, { model: "m" }, greedy)).status, 200);
    clock.advance(15_000);
    const refused = await postChat(gateway, { model: "m" }, greedy);
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.headers["retry-after"], "45");
    assert.match(errorOf(refused).message, /^Client `greedy` is over its rpm budget \(1\/1\): retry in 45 s\.$/);
    assert.doesNotMatch(refused.text, /other|secret-key|sk-alpha/);
  });

  test("a 503 on the Messages door names the open circuit, in Anthropic's overloaded_error", async (t) => {
    const clock = new ManualClock(START_MS);
    const scene = await startScene(t, {
      clock,
      beta: false,
      config: { cooldowns: { failure_threshold: 1, failure_window_ms: 10_000 } },
    });
    scene.alpha.enqueue(CHAT_ROUTE, {
      kind: "json",
      status: 500,
      body: { error: { message: "internal error", type: "server_error", code: null, param: null } },
    });
    assert.equal((await scene.chat()).status, 502);

    const anthropic = new Anthropic({ baseURL: scene.gateway.url, apiKey: "x", maxRetries: 0 });
    const failing = await anthropic.messages.create({ model: "m", max_tokens: 16, messages: HI }).then(
      () => assert.fail("the Messages call was served by an open circuit"),
      (error: unknown) => error,
    );
    assert.ok(failing instanceof Anthropic.APIError, String(failing));
    assert.equal(failing.status, 503);
    const body = failing.error as { error: { type: string; message: string } };
    assert.equal(body.error.type, "overloaded_error");
    assert.match(
      body.error.message,
      /^Every candidate for `m` is failing \(circuit open or key rejected\); the next try is in \d+ s\. Skipped: alpha\/m: circuit open after repeated failures until 2026-01-01T12:00:\d\d\.000Z\.$/,
    );
    assert.equal(scene.counts().alpha, 1);
  });
});
