// Keep-alives (`server.stream_keepalive_ms`, docs/streaming.md "Keep-alives"): a stream whose answer is slow to start
// gets its head early and a keep-alive every interval, then the whole answer, which each official SDK parses as
// usual; a stream silent after its start gets keep-alives too; a fast stream is byte for byte what it was.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createOpenAI } from "@ai-sdk/openai";
import Anthropic from "@anthropic-ai/sdk";
import { streamText } from "ai";
import { CHAT_ROUTE, openAiClient } from "../helpers/e2e.ts";
import {
  commentsOf,
  keepAliveScene,
  newestRecord,
  postRaw,
  SLOW_START_MS,
  UPSTREAM_MODEL,
  withoutKeepAlives,
} from "../helpers/keepalive-scene.ts";
import { chatStream, type MockStep } from "../helpers/mock-upstream.ts";

const WORDS = ["Hello", " from", " a", " slow", " upstream."];
const ANSWER = WORDS.join("");

/** An answer whose headers come `headersDelayMs` late (the upstream queues it), then streams at once. */
function slowStart(headersDelayMs = SLOW_START_MS): MockStep {
  return { kind: "sse", headersDelayMs, events: chatStream(WORDS, UPSTREAM_MODEL, { usage: true }) };
}

describe("a stream slow to start: the head early, keep-alives, then the answer", () => {
  test("chat, raw: 200 at once without the candidate's headers, `: keep-alive` comments, then the answer", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, slowStart());
    const answer = await postRaw(gateway, "/v1/chat/completions", {
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(answer.status, 200);
    assert.match(answer.headers["content-type"] ?? "", /^text\/event-stream/);
    assert.ok(answer.headers["x-request-id"], "the request id is known before any candidate answers");
    assert.equal(answer.headers["x-gateway-provider"], undefined, "no candidate had answered when the head went out");
    const comments = commentsOf(answer.text);
    assert.ok(comments.length >= 3, `keep-alives while alpha took ${SLOW_START_MS} ms: ${comments.length}`);
    assert.ok(
      comments.every((line) => line === ": keep-alive"),
      comments.join(" | "),
    );
    assert.ok(answer.text.startsWith(": keep-alive\n\n"), "the head's first bytes are a keep-alive");
    assert.ok(answer.text.endsWith("data: [DONE]\n\n"));
    const record = await newestRecord(gateway, "chat");
    assert.equal(record.status, 200);
    assert.equal(record.outcome, "success");
    assert.ok((record.earlyCommitMs ?? 0) >= 150, `earlyCommitMs ${record.earlyCommitMs}`);
  });

  test("chat, openai SDK: the whole answer, no error", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, slowStart());
    const stream = await openAiClient(gateway).chat.completions.create({
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    assert.equal(text, ANSWER);
  });

  test("legacy completions, raw: keep-alives, then the answer", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    const chunk = (text: string, finish: string | null) => ({
      data: {
        id: "cmpl-1",
        object: "text_completion",
        model: UPSTREAM_MODEL,
        choices: [{ index: 0, text, finish_reason: finish }],
      },
    });
    mock.enqueue("POST /v1/completions", {
      kind: "sse",
      headersDelayMs: SLOW_START_MS,
      events: [chunk("Once upon", null), chunk(" a time", "stop")],
    });
    const answer = await postRaw(gateway, "/v1/completions", { model: "m", stream: true, prompt: "Tell" });
    assert.equal(answer.status, 200);
    assert.ok(commentsOf(answer.text).length >= 3, answer.text.slice(0, 200));
    assert.match(answer.text, /"text":"Once upon"[\s\S]*"text":" a time"[\s\S]*data: \[DONE\]\n\n$/);
  });

  test("Messages, Anthropic SDK: `event: ping` keep-alives, then the message", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, slowStart(), slowStart());
    const raw = await postRaw(gateway, "/v1/messages", {
      model: "m",
      max_tokens: 100,
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(raw.status, 200);
    const beforeStart = raw.text.slice(0, raw.text.indexOf("event: message_start"));
    const pings = beforeStart.split('event: ping\ndata: {"type":"ping"}\n\n').length - 1;
    assert.ok(pings >= 3, `pings before message_start: ${pings}`);
    assert.equal(commentsOf(raw.text).length, 0, "Messages keep-alives are Anthropic's pings, not comments");
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const stream = anthropic.messages.stream({
      model: "m",
      max_tokens: 100,
      messages: [{ role: "user", content: "hi" }],
    });
    const message = await stream.finalMessage();
    assert.deepEqual(
      message.content.map((block) => (block.type === "text" ? block.text : block.type)),
      [ANSWER],
    );
    assert.equal(message.stop_reason, "end_turn");
  });

  test("Responses, openai SDK: comments, then the response", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, slowStart(), slowStart());
    const raw = await postRaw(gateway, "/v1/responses", { model: "m", stream: true, input: "hi" });
    assert.equal(raw.status, 200);
    assert.ok(commentsOf(raw.text).length >= 3, raw.text.slice(0, 200));
    assert.match(raw.text, /event: response\.completed\n/);
    const stream = openAiClient(gateway).responses.stream({ model: "m", input: "hi" });
    const response = await stream.finalResponse();
    assert.equal(response.status, "completed");
    assert.equal(response.output_text, ANSWER);
  });

  test("AI SDK: chat provider and the default (Responses) provider read the answer", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, slowStart(), slowStart());
    const openai = createOpenAI({ baseURL: gateway.baseUrl, apiKey: "x" });
    for (const model of [openai.chat("m"), openai("m")]) {
      const result = streamText({ model, prompt: "hi", maxRetries: 0, onError: () => {} });
      assert.equal(await result.text, ANSWER);
      assert.equal(await result.finishReason, "stop");
    }
  });
});

describe("an early head carries the answer's headers known before any candidate answered", () => {
  test("Responses: `x-gateway-dropped-tools` (the door's translation), as a prompt answer has it", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, slowStart());
    const body = { model: "m", stream: true, input: "hi", tools: [{ type: "web_search" }] };
    const raw = await postRaw(gateway, "/v1/responses", body);
    assert.ok(raw.text.startsWith(": keep-alive\n\n"), "the head went out early");
    assert.equal(raw.headers["x-gateway-dropped-tools"], "web_search");
    assert.equal(raw.headers["x-gateway-provider"], undefined, "no candidate had answered when the head went out");
    assert.match(raw.text, /event: response\.completed\n/);
  });

  test("chat with the answer cache on: `x-gateway-cache: miss`, known once the lookup missed", async (t) => {
    const { mock, gateway } = await keepAliveScene(t, { cache: "{ enabled: true }" });
    mock.enqueue(CHAT_ROUTE, slowStart());
    const body = { model: "m", stream: true, messages: [{ role: "user", content: "hi" }] };
    const raw = await postRaw(gateway, "/v1/chat/completions", body);
    assert.ok(raw.text.startsWith(": keep-alive\n\n"), "the head went out early");
    assert.equal(raw.headers["x-gateway-cache"], "miss");
    const again = await postRaw(gateway, "/v1/chat/completions", body);
    assert.equal(again.headers["x-gateway-cache"], "hit", "the answer was kept: the miss was true");
  });
});

describe("after the start: silence gets a keep-alive too", () => {
  test("chat: a pause in the upstream's stream longer than the interval is filled with keep-alives", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    const events = chatStream(WORDS, UPSTREAM_MODEL);
    // The role chunk, the first word, then 700 ms of nothing (a model thinking, unseen), then the rest.
    events.splice(2, 0, { delayMs: 700 });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events });
    const answer = await postRaw(gateway, "/v1/chat/completions", {
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(answer.headers["x-gateway-provider"], "alpha", "a prompt start commits as before");
    const firstData = answer.text.indexOf("data: ");
    const firstComment = answer.text.indexOf(": keep-alive");
    assert.ok(firstData >= 0 && firstComment > firstData, `keep-alives after the first event:\n${answer.text}`);
    assert.ok(commentsOf(answer.text).length >= 2, answer.text);
    assert.equal((await newestRecord(gateway, "chat")).earlyCommitMs, undefined, "not an early commit");
  });

  test("Messages: hidden reasoning is silence toward the client, and gets pings", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    const reasoning = (text: string) => ({
      data: {
        id: "c1",
        object: "chat.completion.chunk",
        model: UPSTREAM_MODEL,
        choices: [{ index: 0, delta: { reasoning_content: text }, finish_reason: null }],
      },
    });
    const events = chatStream(WORDS, UPSTREAM_MODEL);
    // Reasoning for 800 ms, which the Messages door drops without `thinking` (the request asks for none).
    events.splice(1, 0, reasoning("Let me"), { delayMs: 400 }, reasoning(" think"), { delayMs: 400 });
    mock.enqueue(CHAT_ROUTE, { kind: "sse", events });
    const raw = await postRaw(gateway, "/v1/messages", {
      model: "m",
      max_tokens: 100,
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    // The door sends one ping after message_start, as Anthropic does; the silence adds more before the first block.
    const start = raw.text.indexOf("event: message_start");
    const firstBlock = raw.text.indexOf("event: content_block_start");
    const pings = raw.text.slice(start, firstBlock).split("event: ping\n").length - 1;
    assert.ok(start >= 0 && pings >= 2, `pings while the reasoning is hidden: ${pings}\n${raw.text}`);
    assert.doesNotMatch(raw.text, /thinking/);
  });
});

test("Responses background stream (`background: true, stream: true`): its run's silence gets keep-alives too", async (t) => {
  const { mock, gateway } = await keepAliveScene(t);
  const events = chatStream(WORDS, UPSTREAM_MODEL);
  // The run's upstream is silent 900 ms before its first chunk, after the queued response's first events went out.
  events.splice(0, 0, { delayMs: 900 });
  mock.enqueue(CHAT_ROUTE, { kind: "sse", events }, { kind: "sse", events });
  const raw = await postRaw(gateway, "/v1/responses", { model: "m", stream: true, background: true, input: "hi" });
  assert.equal(raw.status, 200);
  assert.ok(commentsOf(raw.text).length >= 2, `keep-alives in the silence:\n${raw.text}`);
  const stream = openAiClient(gateway).responses.stream({ model: "m", input: "hi", background: true });
  assert.equal((await stream.finalResponse()).output_text, ANSWER);
});

describe("a fast stream is unchanged", () => {
  test("chat: byte for byte what keep-alives off write, with the candidate's headers", async (t) => {
    const bodies: string[] = [];
    for (const keepAliveMs of [200, 0]) {
      const { mock, gateway } = await keepAliveScene(t, { keepAliveMs });
      mock.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(WORDS, UPSTREAM_MODEL, { delayMs: 20 }) });
      const answer = await postRaw(gateway, "/v1/chat/completions", {
        model: "m",
        stream: true,
        messages: [{ role: "user", content: "hi" }],
      });
      assert.equal(answer.status, 200);
      assert.equal(answer.headers["x-gateway-provider"], "alpha");
      assert.equal(answer.headers["x-gateway-model"], UPSTREAM_MODEL);
      assert.equal(answer.headers["x-gateway-attempts"], "1");
      assert.equal(commentsOf(answer.text).length, 0, answer.text);
      bodies.push(answer.text.replace(/"created":\d+/g, ""));
    }
    assert.equal(bodies[0], bodies[1]);
  });

  test("keep-alives off (0): a slow start sends nothing until the answer, as before", async (t) => {
    const { mock, gateway } = await keepAliveScene(t, { keepAliveMs: 0 });
    mock.enqueue(CHAT_ROUTE, slowStart());
    const answer = await postRaw(gateway, "/v1/chat/completions", {
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(answer.headers["x-gateway-provider"], "alpha");
    assert.equal(commentsOf(answer.text).length, 0);
    assert.equal(withoutKeepAlives(answer.text), answer.text);
    assert.equal((await newestRecord(gateway, "chat")).earlyCommitMs, undefined);
  });
});
