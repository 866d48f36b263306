// Every candidate overloaded (an upstream 529 or `overloaded_error`, a 503 with retry-after) and nothing else: the
// Messages door answers 529 `overloaded_error`, which Anthropic's SDK throws as `OverloadedError` and Claude Code
// treats as an overload, and the OpenAI doors 503 `upstream_overloaded` (OpenAI's own overload answer is a 503).
// Before 2026-12-07 every door answered `429 rate_limit_error` "every candidate is rate-limited", which clients back
// off from as from their own rate limit. The deployment still cools down for it (docs/errors.md).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { openRouter } from "../fixtures/provider-fixtures.ts";
import { finished } from "../helpers/background-steps.ts";
import { CHAT_ROUTE, HELLO, openAiClient, recordsOf, useGateway, useMock } from "../helpers/e2e.ts";
import type { MockStep, MockUpstream } from "../helpers/mock-upstream.ts";

const OVERLOADED: MockStep = {
  kind: "json",
  status: 529,
  body: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } },
};

async function scene(t: Parameters<typeof useMock>[0]) {
  const first = await useMock(t);
  const second = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
${[first, second]
  .map(
    (mock: MockUpstream, index) => `  - name: p${index}
    base_url: ${mock.baseUrl}
    api_key: sk-${index}
    retries: 0
    models:
      m: {}
`,
  )
  .join("")}`,
  );
  return { first, second, gateway };
}

/** 529 overloaded_error with a retry-after, both candidates cooling 7 s after it (`retry-after: 7`). */
const OVERLOADED_FOR_7_S: MockStep = { ...OVERLOADED, headers: { "retry-after": "7" } };

function messagesCall(anthropic: Anthropic): Promise<unknown> {
  return anthropic.messages.create({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "hi" }] });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.fail("expected a refusal"),
    (caught: unknown) => caught,
  );
}

describe("every candidate overloaded", () => {
  test("messages door: 529 overloaded_error (the SDK's OverloadedError), with retry-after", async (t) => {
    const { first, second, gateway } = await scene(t);
    first.enqueue(CHAT_ROUTE, OVERLOADED);
    second.enqueue(CHAT_ROUTE, { kind: "json", status: 503, headers: { "retry-after": "7" }, body: { error: "busy" } });
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const error = await rejection(
      anthropic.messages.create({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }),
    );
    assert.ok(error instanceof Anthropic.APIError, String(error));
    assert.equal(error.status, 529, String(error));
    assert.ok(error instanceof Anthropic.OverloadedError);
    assert.equal((error.error as { error?: { type?: string } }).error?.type, "overloaded_error");
    assert.match(error.message, /overloaded/);
    assert.ok(Number(error.headers?.get("retry-after")) > 0, "retry-after");
  });

  test("chat door: 503 upstream_overloaded", async (t) => {
    const { first, second, gateway } = await scene(t);
    first.enqueue(CHAT_ROUTE, OVERLOADED);
    second.enqueue(CHAT_ROUTE, OVERLOADED);
    const openai = openAiClient(gateway);
    const chat = await rejection(openai.chat.completions.create({ model: "m", messages: HELLO }));
    assert.ok(chat instanceof OpenAI.APIError, String(chat));
    assert.equal(chat.status, 503, String(chat));
    assert.equal(chat.code, "upstream_overloaded");

    assert.match(chat.message, /Every candidate for `m` is overloaded/);
  });

  test("responses door: 503 upstream_overloaded", async (t) => {
    const { first, second, gateway } = await scene(t);
    first.enqueue(CHAT_ROUTE, OVERLOADED);
    second.enqueue(CHAT_ROUTE, OVERLOADED);
    const openai = openAiClient(gateway);
    const responses = await rejection(openai.responses.create({ model: "m", input: "hi" }));
    assert.ok(responses instanceof OpenAI.APIError, String(responses));
    assert.equal(responses.status, 503, String(responses));
    assert.equal(responses.code, "upstream_overloaded");
  });

  test("an overload and a 500: not an overload, the 502 of failed attempts (on the Messages door too)", async (t) => {
    const { first, second, gateway } = await scene(t);
    first.enqueue(CHAT_ROUTE, OVERLOADED);
    second.enqueue(CHAT_ROUTE, { kind: "json", status: 500, body: { error: { message: "boom" } } });
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const error = await rejection(
      anthropic.messages.create({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }),
    );
    assert.ok(error instanceof Anthropic.APIError, String(error));
    assert.equal(error.status, 502, String(error));
  });

  test("the request record says what the Messages client got: 529, not the OpenAI doors' 503", async (t) => {
    const { first, second, gateway } = await scene(t);
    first.enqueue(CHAT_ROUTE, OVERLOADED);
    second.enqueue(CHAT_ROUTE, OVERLOADED);
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const error = await rejection(messagesCall(anthropic));
    assert.ok(error instanceof Anthropic.OverloadedError, String(error));
    const { records } = await recordsOf(gateway, "messages");
    assert.equal(records[0]?.status, 529);
  });

  test("every candidate still cooling after overload answers: the overload answer again, with the cooldown's wait", async (t) => {
    const { first, second, gateway } = await scene(t);
    first.enqueue(CHAT_ROUTE, OVERLOADED_FOR_7_S);
    second.enqueue(CHAT_ROUTE, OVERLOADED_FOR_7_S);
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    assert.ok((await rejection(messagesCall(anthropic))) instanceof Anthropic.OverloadedError);
    // Nothing is tried now: both candidates cool down for the 7 s they asked for.
    const again = await rejection(messagesCall(anthropic));
    assert.ok(again instanceof Anthropic.APIError, String(again));
    assert.equal(again.status, 529, String(again));
    assert.ok(again instanceof Anthropic.OverloadedError);
    const retryAfter = Number(again.headers?.get("retry-after"));
    assert.ok(retryAfter > 0 && retryAfter <= 7, `retry-after ${retryAfter}`);
    const chat = await rejection(openAiClient(gateway).chat.completions.create({ model: "m", messages: HELLO }));
    assert.ok(chat instanceof OpenAI.APIError, String(chat));
    assert.equal(chat.status, 503, String(chat));
    assert.equal(chat.code, "upstream_overloaded");
    const retryAfterMs = Number(chat.headers?.get("retry-after-ms"));
    assert.ok(retryAfterMs > 0 && retryAfterMs <= 7_000, `retry-after-ms ${retryAfterMs}`);
    assert.match(chat.message, /Every candidate for `m` is overloaded; the first is available again in \d s/);
    assert.equal(first.requests.length + second.requests.length, 2, "nothing tried while cooling");
  });

  test("OpenRouter's capacity 429 ('temporarily rate-limited upstream') is an overload when tried, as when its cooldown leaves the candidate out", async (t) => {
    const { first, second, gateway } = await scene(t);
    // OpenRouter's wait for a relayed 429 is in its body (its headers are the account's): 7 s, so both still cool.
    const body = JSON.parse(openRouter.upstreamRateLimited429.bodyText) as { error: { metadata: object } };
    body.error.metadata = { ...body.error.metadata, retry_after_seconds: 7 };
    const upstreamBusy: MockStep = { kind: "json", status: 429, body };
    first.enqueue(CHAT_ROUTE, upstreamBusy);
    second.enqueue(CHAT_ROUTE, upstreamBusy);
    const openai = openAiClient(gateway);
    const tried = await rejection(openai.chat.completions.create({ model: "m", messages: HELLO }));
    const cooling = await rejection(openai.chat.completions.create({ model: "m", messages: HELLO }));
    assert.equal(first.requests.length + second.requests.length, 2, "the second request tried nothing");
    for (const [when, error] of [
      ["tried", tried],
      ["cooling", cooling],
    ] as const) {
      assert.ok(error instanceof OpenAI.APIError, `${when}: ${String(error)}`);
      assert.equal(error.status, 503, `${when}: ${String(error)}`);
      assert.equal(error.code, "upstream_overloaded", when);
      assert.ok(Number(error.headers?.get("retry-after-ms")) > 0, `${when}: retry-after-ms`);
    }
  });

  test("a candidate another request's overload answer cooled while this one was on its way: still the overload answer", async (t) => {
    const { first, second, gateway } = await scene(t);
    // The slow request's p0 answers late; meanwhile the fast one's p0 and p1 answer at once, and p1 cools (7 s)
    // before the slow one reaches it: left out when its turn comes, for the same overload.
    first.enqueue(CHAT_ROUTE, { ...OVERLOADED_FOR_7_S, delayMs: 1_500 });
    first.enqueue(CHAT_ROUTE, OVERLOADED_FOR_7_S);
    second.enqueue(CHAT_ROUTE, OVERLOADED_FOR_7_S);
    const openai = openAiClient(gateway);
    const slow = rejection(openai.chat.completions.create({ model: "m", messages: HELLO }));
    await sleep(150);
    const fast = await rejection(openai.chat.completions.create({ model: "m", messages: HELLO }));
    const late = await slow;
    assert.equal(second.requests.length, 1, "p1 asked once, by the fast request");
    for (const [when, error] of [
      ["fast", fast],
      ["slow", late],
    ] as const) {
      assert.ok(error instanceof OpenAI.APIError, `${when}: ${String(error)}`);
      assert.equal(error.status, 503, `${when}: ${String(error)}`);
      assert.equal(error.code, "upstream_overloaded", when);
      assert.ok(Number(error.headers?.get("retry-after-ms")) > 0, `${when}: retry-after-ms`);
    }
  });

  test("a background response every candidate answered overloaded fails with OpenAI's server_error, the foreground's message", async (t) => {
    const { first, second, gateway } = await scene(t);
    first.enqueue(CHAT_ROUTE, OVERLOADED_FOR_7_S);
    second.enqueue(CHAT_ROUTE, OVERLOADED_FOR_7_S);
    const openai = openAiClient(gateway);
    const queued = await openai.responses.create({ model: "m", input: "hi", background: true });
    const failed = await finished(openai, queued.id);
    assert.equal(failed.status, "failed");
    assert.equal(failed.error?.code, "server_error");
    assert.match(
      failed.error?.message ?? "",
      /^Every candidate for `m` is overloaded; the first is available again in \d s\./,
    );
    // Still cooling: the same ending, nothing tried (before 2026-12-07 a rate_limit_exceeded, as a 429 was).
    const again = await finished(
      openai,
      (await openai.responses.create({ model: "m", input: "hi", background: true })).id,
    );
    assert.equal(again.error?.code, "server_error");
    assert.match(again.error?.message ?? "", /^Every candidate for `m` is overloaded/);
    assert.equal(first.requests.length + second.requests.length, 2);
  });
});
