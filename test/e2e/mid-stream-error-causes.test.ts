// An upstream that fails a started stream with an error chunk saying why (`{"choices":[],"error":{"code":429,...}}`,
// OpenRouter's shape; 529 or `overloaded_error` for an overload) reaches each door's client as that cause, in the
// door's own dialect, as the door's HTTP errors name it: Messages `event: error` with `rate_limit_error` /
// `overloaded_error` (`@anthropic-ai/sdk`), chat `data: {"error":{"type":"rate_limit_error","code":
// "rate_limit_exceeded"}}` and the Responses API's `error` event and `response.failed` with `rate_limit_exceeded`
// (`openai`). A mid-stream 429 also cools the deployment down as a 429 status does: the next request is not sent there.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import type OpenAI from "openai";
import { APIError } from "openai";
import { CHAT_ROUTE, chatRequests, oneProviderYaml, openAiClient, useGateway, useMock } from "../helpers/e2e.ts";
import { recordOf } from "../helpers/keepalive-scene.ts";
import { chatChunk, type SseScript } from "../helpers/mock-upstream.ts";

const UPSTREAM_ID = "vendor/m-instruct";

async function scene(t: Parameters<typeof useMock>[0]) {
  const mock = await useMock(t);
  // A cooldown longer than the wait for a cooling candidate (2 s): the deployment a 429 cooled is not waited for.
  const gateway = await useGateway(
    t,
    `cooldowns:\n  rate_limit_base_ms: 60000\n${oneProviderYaml(mock, { id: UPSTREAM_ID })}`,
  );
  return {
    mock,
    gateway,
    anthropic: new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 }),
    openai: openAiClient(gateway),
  };
}

/** Some text, then the upstream's error chunk. */
function failingStream(error: Record<string, unknown>): SseScript[] {
  return [
    { data: chatChunk("", UPSTREAM_ID, { role: true }) },
    { data: chatChunk("Partial", UPSTREAM_ID) },
    { data: { id: "chatcmpl-x", object: "chat.completion.chunk", model: UPSTREAM_ID, choices: [], error } },
  ];
}

const RATE_LIMITED = { code: 429, message: "Provider returned error: rate limited upstream" };
const OVERLOADED = { code: 529, message: "Overloaded" };

/** The `event: error` body the Anthropic SDK raised (its APIError keeps the event's JSON as `error`). */
async function messagesStreamError(client: Anthropic): Promise<{ type?: unknown; message?: unknown }> {
  const stream = client.messages.stream({
    model: "m",
    max_tokens: 64,
    messages: [{ role: "user", content: "Hi" }],
  });
  const error = await stream.finalMessage().then(
    () => assert.fail("the stream must fail"),
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof Anthropic.APIError, String(error));
  return (error.error as { error?: { type?: unknown; message?: unknown } }).error ?? {};
}

/** A chat stream that must fail: the text read before it failed, and what the SDK threw. */
async function chatStreamFailure(openai: OpenAI): Promise<{ text: string; error: unknown }> {
  const stream = await openai.chat.completions.create({
    model: "m",
    messages: [{ role: "user", content: "Hi" }],
    stream: true,
  });
  let text = "";
  const error = await (async () => {
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
  })().then(
    () => assert.fail("the stream must fail"),
    (thrown: unknown) => thrown,
  );
  return { text, error };
}

describe("a mid-stream upstream error keeps its cause on every door", () => {
  test("messages: a 429 error chunk is rate_limit_error, and the deployment cools down", async (t) => {
    const { mock, anthropic } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: failingStream(RATE_LIMITED) });
    const error = await messagesStreamError(anthropic);
    assert.equal(error.type, "rate_limit_error");
    assert.match(String(error.message), /rate limited upstream/);
    // Cooling down, the only deployment is not asked again: the gateway answers the next request with its own 429.
    await assert.rejects(
      anthropic.messages.create({ model: "m", max_tokens: 16, messages: [{ role: "user", content: "Again" }] }),
      (thrown: unknown) => thrown instanceof Anthropic.RateLimitError,
    );
    assert.equal(chatRequests(mock).length, 1);
  });

  test("messages: a 529 error chunk is overloaded_error; the record says 502 upstream_overloaded, not 529", async (t) => {
    const { mock, gateway, anthropic } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: failingStream(OVERLOADED) });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: failingStream(OVERLOADED) });
    const error = await messagesStreamError(anthropic);
    assert.equal(error.type, "overloaded_error");
    // Its client got a 200 and an in-band error: recorded as a failed stream (502), as on the OpenAI doors.
    const record = await recordOf(gateway, "messages");
    assert.deepEqual([record.status, record.errorCode], [502, "upstream_overloaded"]);
  });

  test("messages: an error chunk that names no cause stays api_error", async (t) => {
    const { mock, anthropic } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: failingStream({ message: "Something broke" }) });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: failingStream({ message: "Something broke" }) });
    const error = await messagesStreamError(anthropic);
    assert.equal(error.type, "api_error");
  });

  test("chat: the in-band error of a 429 chunk is rate_limit_error / rate_limit_exceeded", async (t) => {
    const { mock, openai } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: failingStream(RATE_LIMITED) });
    const { text, error } = await chatStreamFailure(openai);
    assert.equal(text, "Partial");
    assert.ok(error instanceof APIError, String(error));
    assert.equal(error.type, "rate_limit_error");
    assert.equal(error.code, "rate_limit_exceeded");
  });

  // The same overload before content is `upstream_overloaded` (stream-overload-before-content.test.ts): until
  // 2026-12-07 one after content was `upstream_unavailable`, so a client told the two apart by when it came.
  for (const [name, overload] of [
    ["529", OVERLOADED],
    ["503", { code: 503, message: "Service unavailable" }],
    ["overloaded_error", { type: "overloaded_error", message: "Overloaded" }],
  ] as const) {
    test(`chat: a ${name} error chunk after content, every continuation overloaded too, is upstream_overloaded`, async (t) => {
      const { mock, openai } = await scene(t);
      for (let index = 0; index < 3; index++)
        mock.enqueue(CHAT_ROUTE, { kind: "sse", events: failingStream(overload) });
      const { text, error } = await chatStreamFailure(openai);
      assert.ok(text.startsWith("Partial"), text);
      assert.ok(error instanceof APIError, String(error));
      assert.equal(error.code, "upstream_overloaded");
      assert.equal(error.type, "upstream_error");
    });
  }

  test('chat: a 429 on a chunk that carries text and finish_reason "error" (failed in place) is a rate limit too', async (t) => {
    const { mock, openai } = await scene(t);
    const [role, partial] = failingStream(RATE_LIMITED);
    const failedInPlace = {
      data: {
        id: "chatcmpl-x",
        object: "chat.completion.chunk",
        model: UPSTREAM_ID,
        choices: [{ index: 0, delta: { content: " more" }, finish_reason: "error" }],
        error: RATE_LIMITED,
      },
    };
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: [role, partial, failedInPlace].filter((e) => e !== undefined) });
    const { text, error } = await chatStreamFailure(openai);
    assert.equal(text, "Partial more", "the chunk's text is the client's, without the upstream's error object");
    assert.ok(error instanceof APIError, String(error));
    assert.equal(error.code, "rate_limit_exceeded");
    // Cooled down as a 429 status would: the next request is the gateway's own 429, the upstream not asked again.
    await assert.rejects(
      openai.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Again" }] }),
      (thrown: unknown) => thrown instanceof APIError && thrown.status === 429,
    );
    assert.equal(chatRequests(mock).length, 1);
  });

  test("responses: the error event and response.failed say rate_limit_exceeded", async (t) => {
    const { mock, openai } = await scene(t);
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: failingStream(RATE_LIMITED) });
    const stream = await openai.responses.create({ model: "m", input: "Hi", stream: true });
    const seen: { type: string; code?: unknown; errorCode?: unknown }[] = [];
    try {
      for await (const event of stream) {
        if (event.type === "error") seen.push({ type: event.type, code: event.code });
        if (event.type === "response.failed") seen.push({ type: event.type, errorCode: event.response.error?.code });
      }
    } catch (thrown) {
      // The SDK raises the `error` event; what it carried is checked below.
      assert.ok(thrown instanceof APIError, String(thrown));
      seen.push({ type: "thrown", code: thrown.code });
    }
    assert.ok(
      seen.some((event) => event.code === "rate_limit_exceeded" || event.errorCode === "rate_limit_exceeded"),
      JSON.stringify(seen),
    );
    assert.ok(!seen.some((event) => event.code === "stream_interrupted"), JSON.stringify(seen));
  });

  test("responses: an overload after content says upstream_overloaded", async (t) => {
    const { mock, openai } = await scene(t);
    for (let index = 0; index < 3; index++)
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events: failingStream(OVERLOADED) });
    const stream = await openai.responses.create({ model: "m", input: "Hi", stream: true });
    const codes: unknown[] = [];
    try {
      for await (const event of stream) {
        if (event.type === "error") codes.push(event.code);
        if (event.type === "response.failed") codes.push(event.response.error?.code);
      }
    } catch (thrown) {
      assert.ok(thrown instanceof APIError, String(thrown));
      codes.push(thrown.code);
    }
    assert.ok(codes.includes("upstream_overloaded"), JSON.stringify(codes));
    assert.ok(!codes.includes("upstream_unavailable"), JSON.stringify(codes));
  });
});
