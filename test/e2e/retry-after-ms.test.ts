// A 429 whose wait is shorter than a second, as OpenAI's token windows often give ("retry-after-ms: 300"): the
// gateway's own 429 says the wait to the millisecond in `retry-after-ms` next to the whole-second `retry-after`,
// and the SDKs (openai, @anthropic-ai/sdk, the AI SDK all read `retry-after-ms` first) retry after that wait
// instead of a whole second.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { ManualClock } from "../../src/clock.ts";
import {
  CHAT_ROUTE,
  chatRequests,
  errorOf,
  oneProviderYaml,
  postChat,
  send,
  useGateway,
  useMock,
} from "../helpers/e2e.ts";
import { chatStream, type MockUpstream, rateLimited } from "../helpers/mock-upstream.ts";

/** One provider; no wait for it to cool, so its 429 reaches the client as the gateway's 429. */
async function scene(t: Parameters<typeof useMock>[0], options: { clock?: ManualClock } = {}) {
  const mock = await useMock(t);
  const yaml = `${oneProviderYaml(mock)}routing:\n  max_wait_for_better_ms: 0\n`;
  const gateway = await useGateway(t, yaml, options.clock === undefined ? {} : { clock: options.clock });
  return { mock, gateway };
}

/** How long the SDK waited between the refused request and its retry, as the mock received them. */
function retryGapMs(mock: MockUpstream): number {
  const [refused, served] = chatRequests(mock);
  assert.ok(refused !== undefined && served !== undefined, "the SDK retried");
  return served.receivedAtMs - refused.receivedAtMs;
}

const SHORT_WAIT = rateLimited({ retryAfter: "1", headers: { "retry-after-ms": "300" } });

describe("a wait shorter than a second", () => {
  test("the gateway's 429 carries retry-after-ms, exact, next to retry-after rounded up, on every door", async (t) => {
    const clock = new ManualClock();
    const { mock, gateway } = await scene(t, { clock });
    mock.enqueue(CHAT_ROUTE, rateLimited({ retryAfter: "3", headers: { "retry-after-ms": "2500" } }));
    const first = await postChat(gateway, { model: "m" });
    assert.equal(first.status, 429, first.text);
    assert.equal(first.headers["retry-after"], "3");
    assert.equal(first.headers["retry-after-ms"], "2500");

    clock.advance(1_200);
    const chat = await postChat(gateway, { model: "m" });
    assert.equal(chat.status, 429, chat.text);
    assert.equal(chat.headers["retry-after"], "2");
    assert.equal(chat.headers["retry-after-ms"], "1300");
    const messages = await send(gateway, "POST", "/v1/messages", {
      body: { model: "m", max_tokens: 10, messages: [{ role: "user", content: "x" }] },
    });
    assert.equal(messages.status, 429, messages.text);
    assert.equal(messages.headers["retry-after-ms"], "1300");
    const responses = await send(gateway, "POST", "/v1/responses", {
      body: { model: "m", input: "x" },
      headers: { origin: "http://127.0.0.1:3000" },
    });
    assert.equal(responses.status, 429, responses.text);
    assert.equal(responses.headers["retry-after-ms"], "1300");
    // An SDK in a browser page reads only the headers CORS exposes.
    assert.match(responses.headers["access-control-expose-headers"] ?? "", /(?:^|, )retry-after-ms(?:,|$)/);
    assert.equal(chatRequests(mock).length, 1, "the cooling candidate got no traffic");
  });

  test("the openai SDK retries after 300 ms, not after a whole second", async (t) => {
    const { mock, gateway } = await scene(t);
    mock.enqueue(CHAT_ROUTE, SHORT_WAIT);
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 1 });
    const answer = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] });
    assert.equal(answer.choices[0]?.message.content, "echo from vendor/m-instruct");
    const gapMs = retryGapMs(mock);
    // A whole-second retry-after makes the SDK sleep 1,000 ms at least; 300 ms plus a loaded machine's overhead.
    assert.ok(gapMs >= 250 && gapMs < 1_000, `the SDK waited ${gapMs} ms`);
  });

  test("the Anthropic SDK retries after 300 ms, not after a whole second", async (t) => {
    const { mock, gateway } = await scene(t);
    mock.enqueue(CHAT_ROUTE, SHORT_WAIT);
    const client = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 1 });
    const message = await client.messages.create({
      model: "m",
      max_tokens: 10,
      messages: [{ role: "user", content: "x" }],
    });
    assert.equal(message.stop_reason, "end_turn");
    const gapMs = retryGapMs(mock);
    assert.ok(gapMs >= 250 && gapMs < 1_000, `the SDK waited ${gapMs} ms`);
  });
});

describe("a full concurrency slot", () => {
  test("a client at its concurrency limit is told 1 s, also in retry-after-ms: the openai SDK's retry then finds the slot free", async (t) => {
    const mock = await useMock(t);
    const key = "greedy-secret-key";
    const yaml = `server:\n  api_keys:\n    - { key: ${key}, name: greedy, limits: { concurrency: 1 } }\n${oneProviderYaml(mock)}`;
    const gateway = await useGateway(t, yaml);
    // Holds the client's one slot for about 600 ms: a request in flight, whose end no clock tells.
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["slow", " answer"], "vendor/m", { delayMs: 150 }) });
    const authorization = { authorization: `Bearer ${key}` };
    const streaming = postChat(gateway, { model: "m", stream: true }, authorization);
    await mock.waitForRequests(1);
    const refused = await postChat(gateway, { model: "m" }, authorization);
    assert.equal(refused.status, 429, refused.text);
    assert.equal(refused.headers["retry-after"], "1");
    // Before: `retry-after-ms: 100` (the gateway's own look-again time for its queue), and an SDK's two retries
    // came 100 ms apart while the slot was still held: the client got the 429 after 200 ms.
    assert.equal(refused.headers["retry-after-ms"], "1000");
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: key, maxRetries: 2 });
    const answer = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] });
    assert.equal(answer.choices[0]?.message.content, "echo from vendor/m-instruct");
    assert.equal((await streaming).status, 200);
  });

  test("a provider at its concurrency limit (no queue): the 429 says 1 s, not the gateway's own 100 ms look again", async (t) => {
    const mock = await useMock(t);
    const limited = "    api_key: sk-alpha\n    limits: { concurrency: 1 }\n";
    const gateway = await useGateway(t, oneProviderYaml(mock).replace("    api_key: sk-alpha\n", limited));
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(["slow", " answer"], "vendor/m", { delayMs: 150 }) });
    const streaming = postChat(gateway, { model: "m", stream: true });
    await mock.waitForRequests(1);
    const refused = await postChat(gateway, { model: "m" });
    assert.equal(refused.status, 429, refused.text);
    assert.match(errorOf(refused).message, /at its concurrency limit \(1 in flight\)/);
    assert.equal(refused.headers["retry-after"], "1");
    // Before: `retry-after-ms: 100`, and the SDK below threw this 429 after two retries 100 ms apart.
    assert.equal(refused.headers["retry-after-ms"], "1000");
    const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 2 });
    const answer = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }] });
    assert.equal(answer.choices[0]?.message.content, "echo from vendor/m-instruct");
    assert.equal((await streaming).status, 200);
  });
});
