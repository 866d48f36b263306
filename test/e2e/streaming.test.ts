// `stream: true` end to end: pass-through as events arrive, the exact framing, how a stream ends (well or not),
// usage chunks, and the gateway headers. Failover before the first byte: streaming-failover.test.ts; failures
// after it: streaming-interruptions.test.ts.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type ChatChunkBody, chatChunk, chatUsageChunk, type SseScript } from "../helpers/mock-upstream.ts";
import { readTimed, sseFrames, strictSseData, waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, sentBody, startTwoProviders } from "../helpers/two-providers.ts";

function chunks(words: readonly string[], finishReason = "stop"): ChatChunkBody[] {
  return [
    chatChunk("", MODEL, { role: true }),
    ...words.map((word) => chatChunk(word, MODEL)),
    chatChunk("", MODEL, { finishReason }),
  ];
}

const events = (bodies: readonly unknown[]): SseScript[] => bodies.map((data) => ({ data }));

describe("stream pass-through", () => {
  test("each event reaches the client as it arrives, not when the upstream finishes", async (t) => {
    const scene = await startTwoProviders(t);
    const [role, hello, world, finish] = chunks(["Hello", " world"]) as [ChatChunkBody, ...ChatChunkBody[]];
    const slowGapMs = 1200;
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [{ data: role }, { data: hello }, { delayMs: slowGapMs }, { data: world }, { data: finish }],
    });

    const answer = await scene.postChat({ stream: true });
    const decoder = new TextDecoder();
    let text = "";
    let firstContentAtMs: number | undefined;
    let isUpstreamStillOpenAtFirstContent = false;
    for await (const bytes of answer.body) {
      text += decoder.decode(bytes, { stream: true });
      if (firstContentAtMs === undefined && text.includes('"Hello"')) {
        firstContentAtMs = performance.now();
        isUpstreamStillOpenAtFirstContent = scene.primary.activeRequests() === 1;
      }
    }
    const endedAtMs = performance.now();
    assert.ok(firstContentAtMs !== undefined);
    assert.ok(isUpstreamStillOpenAtFirstContent, "the first chunk arrived only after the upstream had finished");
    // A buffering gateway would deliver "Hello" together with the rest, after the slow gap.
    assert.ok(
      endedAtMs - firstContentAtMs >= slowGapMs - 400,
      `first content came only ${Math.round(endedAtMs - firstContentAtMs)} ms before the end`,
    );
    assert.equal(text, sseFrames([role, hello, world, finish, "[DONE]"]));
  });

  test("the upstream's data events are passed on byte for byte, with the gateway headers", async (t) => {
    const scene = await startTwoProviders(t);
    // Multibyte text, escapes and a tool call: the payloads must not be re-encoded on the way.
    const bodies: unknown[] = [
      chatChunk("", MODEL, { role: true }),
      chatChunk("Café 東京 🚀", MODEL),
      chatChunk(' "quoted" \\ \u2028 line', MODEL),
      {
        id: "chatcmpl-mock",
        object: "chat.completion.chunk",
        created: 1767225600,
        model: MODEL,
        choices: [
          {
            index: 0,
            delta: {
              tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "{}" } }],
            },
            finish_reason: null,
          },
        ],
        system_fingerprint: "fp_x",
      },
      chatChunk("", MODEL, { finishReason: "tool_calls" }),
    ];
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: events(bodies) });
    const answer = await scene.postChat({ stream: true });
    assert.equal(answer.statusCode, 200);
    assert.equal(answer.headers["content-type"], "text/event-stream; charset=utf-8");
    assert.equal(answer.headers["cache-control"], "no-cache");
    assert.equal(answer.headers["x-gateway-provider"], "alpha");
    assert.equal(answer.headers["x-gateway-model"], MODEL);
    assert.equal(answer.headers["x-gateway-attempts"], "1");
    assert.equal(typeof answer.headers["x-request-id"], "string");
    assert.equal((await readTimed(answer.body)).text, sseFrames([...bodies, "[DONE]"]));

    const upstream = scene.primary.requests[0];
    assert.equal(upstream?.headers.accept, "text/event-stream");
    assert.equal(upstream?.headers.authorization, "Bearer sk-alpha-secret");
    const { stream_options: _usageOption, ...sent } = sentBody(scene.primary);
    assert.deepEqual(sent, { model: MODEL, messages: [{ role: "user", content: "hi" }], stream: true });
  });

  test("the client gets data events only: comments, event names, ids and CRLF line ends are normalised", async (t) => {
    const scene = await startTwoProviders(t);
    const [role, first, finish] = chunks(["one"]) as [ChatChunkBody, ChatChunkBody, ChatChunkBody];
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [
        { raw: ": OPENROUTER PROCESSING\n\n" },
        { raw: `id: 1\r\ndata: ${JSON.stringify(role)}\r\n\r\n` },
        { raw: `event: message\ndata: ${JSON.stringify(first)}\n\n` },
        { raw: ": keep-alive\n\n" },
        { raw: `retry: 1000\ndata:${JSON.stringify(finish)}\r\r` },
      ],
    });
    const answer = await scene.postChat({ stream: true });
    assert.equal((await readTimed(answer.body)).text, sseFrames([role, first, finish, "[DONE]"]));
  });

  test("the official SDK streams the content and sees the gateway headers", async (t) => {
    const scene = await startTwoProviders(t);
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: events(chunks(["The", " answer", " is", " 42."])) });
    const { data: stream, response } = await scene.client.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: "hi" }], stream: true })
      .withResponse();
    assert.equal(response.headers.get("x-gateway-provider"), "alpha");
    assert.equal(response.headers.get("x-gateway-model"), MODEL);
    assert.equal(response.headers.get("x-gateway-attempts"), "1");
    let content = "";
    let finishReason: string | null | undefined;
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta.content ?? "";
      finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
    }
    assert.equal(content, "The answer is 42.");
    assert.equal(finishReason, "stop");
  });

  test("the usage chunk is passed through when the client asked for stream_options.include_usage", async (t) => {
    const scene = await startTwoProviders(t);
    const stream = await scene.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const received = [];
    for await (const chunk of stream) received.push(chunk);
    // The mock's default stream: role, three words, finish, then OpenAI's choice-less usage chunk.
    assert.equal(received.map((chunk) => chunk.choices[0]?.delta.content ?? "").join(""), `echo from ${MODEL}`);
    const last = received.at(-1);
    assert.deepEqual(last?.choices, []);
    assert.deepEqual(last?.usage, { prompt_tokens: 1, completion_tokens: 3, total_tokens: 4 });
    assert.ok(received.slice(0, -1).every((chunk) => chunk.usage === undefined || chunk.usage === null));
    assert.deepEqual(sentBody(scene.primary).stream_options, {
      include_usage: true,
    });
  });

  test("without include_usage the gateway asks the upstream for usage itself and strips the usage chunk", async (t) => {
    const scene = await startTwoProviders(t);
    const answer = await scene.postChat({ stream: true });
    const data = strictSseData((await readTimed(answer.body)).text);
    assert.equal(data.at(-1), "[DONE]");
    const received = data.slice(0, -1).map((payload) => JSON.parse(payload) as ChatChunkBody);
    assert.equal(received.map((chunk) => chunk.choices[0]?.delta.content ?? "").join(""), `echo from ${MODEL}`);
    assert.ok(received.every((chunk) => chunk.usage === undefined && chunk.choices.length === 1));
    // Injected so the gateway can count tokens; the mock then sent a usage chunk the client must not see.
    assert.deepEqual(sentBody(scene.primary).stream_options, {
      include_usage: true,
    });
  });

  test("with inject_stream_usage: false the upstream request is left as the client sent it", async (t) => {
    const scene = await startTwoProviders(t, { primary: { inject_stream_usage: false } });
    const answer = await scene.postChat({ stream: true });
    const data = strictSseData((await readTimed(answer.body)).text);
    assert.equal(data.at(-1), "[DONE]");
    assert.ok(data.slice(0, -1).every((payload) => (JSON.parse(payload) as ChatChunkBody).usage === undefined));
    assert.equal(sentBody(scene.primary).stream_options, undefined);
  });

  test("usage on a chunk that also carries choices is passed on even when the client did not ask", async (t) => {
    const scene = await startTwoProviders(t);
    const finish = {
      ...chatChunk("", MODEL, { finishReason: "stop" }),
      usage: { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3 },
    };
    const bodies = [chatChunk("", MODEL, { role: true }), chatChunk("x", MODEL), finish];
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: events(bodies) });
    const answer = await scene.postChat({ stream: true });
    assert.equal((await readTimed(answer.body)).text, sseFrames([...bodies, "[DONE]"]));
  });

  test("a usage chunk the upstream sends alongside the finish chunk is passed through as is", async (t) => {
    const scene = await startTwoProviders(t);
    const bodies = [...chunks(["x"]), chatUsageChunk(MODEL, { prompt_tokens: 5, completion_tokens: 1 })];
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: events(bodies) });
    const answer = await scene.postChat({ stream: true, stream_options: { include_usage: true } });
    assert.equal((await readTimed(answer.body)).text, sseFrames([...bodies, "[DONE]"]));
  });

  test("legacy /v1/completions streams pass through too", async (t) => {
    const scene = await startTwoProviders(t);
    const stream = await scene.client.completions.create({ model: MODEL, prompt: "say", stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    assert.equal(text, `echo from ${MODEL}`);
    assert.equal(scene.primary.requests[0]?.path, "/v1/completions");
  });
});

/**
 * The upstream's stream_idle_timeout_ms in the tests of a stream's end: what a gateway that waited for more would
 * take. Their bounds are a third of it, so a loaded CI machine (seconds of scheduling delay) stays inside them.
 */
const IDLE_TIMEOUT_MS = 30_000;

describe("how a stream ends", () => {
  test("a clean close after a finish_reason but without [DONE] is finalised with [DONE] at once", async (t) => {
    // A gateway that waited for [DONE] would only give up after stream_idle_timeout_ms, with an error: a timeout far
    // above the bound below, so a loaded machine's slowness is not taken for that wait.
    const scene = await startTwoProviders(t, { primary: { stream_idle_timeout_ms: IDLE_TIMEOUT_MS } });
    const bodies = chunks(["no", " done", " marker"]);
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: events(bodies), end: "close-without-done" });
    const startedAtMs = performance.now();
    const answer = await scene.postChat({ stream: true });
    const { text } = await readTimed(answer.body);
    const elapsedMs = performance.now() - startedAtMs;
    assert.equal(text, sseFrames([...bodies, "[DONE]"]));
    assert.ok(elapsedMs < IDLE_TIMEOUT_MS / 3, `the client waited ${Math.round(elapsedMs)} ms for the end`);

    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: events(bodies), end: "close-without-done" });
    let content = "";
    const stream = await scene.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? "";
    assert.equal(content, "no done marker");
  });

  test("after [DONE] the client's stream ends at once even if the upstream keeps its response open", async (t) => {
    const scene = await startTwoProviders(t, { primary: { stream_idle_timeout_ms: IDLE_TIMEOUT_MS } });
    const bodies = chunks(["lingering"]);
    scene.primary.enqueue(CHAT_ROUTE, {
      kind: "sse",
      events: [...events(bodies), { raw: "data: [DONE]\n\n" }],
      end: "hang",
    });
    const startedAtMs = performance.now();
    const answer = await scene.postChat({ stream: true });
    const { text } = await readTimed(answer.body);
    // A gateway that kept reading after [DONE] would end the client's stream only at the idle timeout.
    assert.ok(performance.now() - startedAtMs < IDLE_TIMEOUT_MS / 3);
    assert.equal(text, sseFrames([...bodies, "[DONE]"]));
    // The lingering upstream response is cut loose shortly after, not kept until the idle timeout.
    const cutWithinMs = IDLE_TIMEOUT_MS / 3;
    await waitUntil(
      () => scene.primary.activeRequests() === 0,
      "the lingering upstream response to be closed",
      cutWithinMs,
    );
  });

  test("a single malformed event is skipped and the stream completes", async (t) => {
    const scene = await startTwoProviders(t);
    const [role, first, second, finish] = chunks(["Hello", " world"]) as [
      ChatChunkBody,
      ChatChunkBody,
      ChatChunkBody,
      ChatChunkBody,
    ];
    const script: SseScript[] = [
      { data: role },
      { data: first },
      { raw: 'data: {"choices":[{"delta":{"content":" brok\n\n' },
      { data: second },
      { data: finish },
    ];
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: script });
    const answer = await scene.postChat({ stream: true });
    assert.equal((await readTimed(answer.body)).text, sseFrames([role, first, second, finish, "[DONE]"]));

    // The SDK would throw on the malformed JSON if it were passed on.
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: script });
    const stream = await scene.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    let content = "";
    for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? "";
    assert.equal(content, "Hello world");
  });
});
