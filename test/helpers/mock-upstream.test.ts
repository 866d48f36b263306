import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import { Agent, request } from "undici";
import {
  type ChatChunkBody,
  type ChatCompletionBody,
  chatCompletion,
  chatStream,
  type MockUpstream,
  rateLimited,
  startMockUpstream,
} from "./mock-upstream.ts";

const CHAT = "POST /v1/chat/completions";

interface Setup {
  mock: MockUpstream;
  agent: Agent;
  post(path: string, payload: unknown, signal?: AbortSignal): ReturnType<typeof request>;
}

async function setUp(t: TestContext, options?: Parameters<typeof startMockUpstream>[0]): Promise<Setup> {
  const mock = await startMockUpstream(options);
  // A private agent, so connection counts are not shared with other tests.
  const agent = new Agent();
  t.after(async () => {
    await agent.destroy();
    await mock.close();
  });
  const post = (path: string, payload: unknown, signal?: AbortSignal) =>
    request(`${mock.baseUrl}${path}`, {
      method: "POST",
      dispatcher: agent,
      headers: { "content-type": "application/json", authorization: "Bearer sk-test" },
      body: JSON.stringify(payload),
      ...(signal === undefined ? {} : { signal }),
    });
  return { mock, agent, post };
}

/** The `data:` payloads of a well-formed SSE body (the mock's output is trusted to use `\n\n` here). */
function dataOf(sseText: string): string[] {
  return sseText
    .split("\n\n")
    .filter((block) => block.startsWith("data: "))
    .map((block) => block.slice("data: ".length));
}

async function waitUntil(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("mock upstream built-in answers", () => {
  test("a chat completion echoes the requested model and records the request", async (t) => {
    const { mock, post } = await setUp(t);
    const payload = { model: "org/model-a", messages: [{ role: "user", content: "hello there" }] };
    const response = await post("/chat/completions", payload);
    assert.equal(response.statusCode, 200);
    const body = (await response.body.json()) as ChatCompletionBody;
    assert.equal(body.object, "chat.completion");
    assert.equal(body.model, "org/model-a");
    assert.equal(body.choices[0]?.message.content, "echo from org/model-a");
    assert.equal(body.choices[0]?.finish_reason, "stop");
    assert.deepEqual(body.usage, { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });

    assert.equal(mock.requests.length, 1);
    const recorded = mock.requests[0];
    assert.equal(recorded?.method, "POST");
    assert.equal(recorded?.path, "/v1/chat/completions");
    assert.equal(recorded?.headers.authorization, "Bearer sk-test");
    assert.deepEqual(recorded?.body, payload);
    assert.equal(recorded?.bodyText, JSON.stringify(payload));
    assert.ok(Math.abs((recorded?.receivedAtMs ?? 0) - Date.now()) < 5000);
  });

  test("a streamed chat completion sends chunks, a usage chunk when asked, then [DONE]", async (t) => {
    const { post } = await setUp(t);
    const response = await post("/chat/completions", {
      model: "m1",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: [{ type: "text", text: "one two three" }] }],
    });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers["content-type"]), /^text\/event-stream/);
    const data = dataOf(await response.body.text());
    assert.equal(data.at(-1), "[DONE]");
    const chunks = data.slice(0, -1).map((text) => JSON.parse(text) as ChatChunkBody);
    assert.ok(chunks.every((chunk) => chunk.object === "chat.completion.chunk" && chunk.model === "m1"));
    assert.equal(chunks[0]?.choices[0]?.delta.role, "assistant");
    assert.equal(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join(""), "echo from m1");
    assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, "stop");
    assert.deepEqual(chunks.at(-1)?.choices, []);
    assert.deepEqual(chunks.at(-1)?.usage, { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 });
  });

  test("a streamed chat completion without include_usage has no usage chunk", async (t) => {
    const { post } = await setUp(t);
    const response = await post("/chat/completions", { model: "m1", stream: true, messages: [] });
    const data = dataOf(await response.body.text());
    assert.equal(data.at(-1), "[DONE]");
    assert.ok(data.slice(0, -1).every((text) => (JSON.parse(text) as ChatChunkBody).usage === undefined));
  });

  test("legacy completions answer plain and streamed", async (t) => {
    const { post } = await setUp(t);
    const plain = await post("/completions", { model: "m2", prompt: "say hi" });
    const body = (await plain.body.json()) as { object: string; model: string; choices: Array<{ text: string }> };
    assert.equal(body.object, "text_completion");
    assert.equal(body.model, "m2");
    assert.equal(body.choices[0]?.text, "echo from m2");

    const streamed = await post("/completions", { model: "m2", prompt: "x", stream: true });
    const data = dataOf(await streamed.body.text());
    assert.equal(data.at(-1), "[DONE]");
    const text = data
      .slice(0, -1)
      .map((item) => (JSON.parse(item) as { choices: Array<{ text: string }> }).choices[0]?.text ?? "")
      .join("");
    assert.equal(text, "echo from m2");
  });

  test("embeddings answer one deterministic vector per input, as floats or base64", async (t) => {
    const { post } = await setUp(t);
    type EmbeddingsBody = { object: string; model: string; data: Array<{ index: number; embedding: unknown }> };
    const floats = (await (
      await post("/embeddings", { model: "e1", input: ["a", "b"] })
    ).body.json()) as EmbeddingsBody;
    assert.equal(floats.object, "list");
    assert.equal(floats.model, "e1");
    assert.deepEqual(
      floats.data.map((item) => item.index),
      [0, 1],
    );
    const first = floats.data[0]?.embedding as number[];
    assert.equal(first.length, 8);
    assert.notDeepEqual(first, floats.data[1]?.embedding);

    const encoded = (await (
      await post("/embeddings", { model: "e1", input: "a", encoding_format: "base64" })
    ).body.json()) as EmbeddingsBody;
    const bytes = Buffer.from(encoded.data[0]?.embedding as string, "base64");
    const decoded = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
    assert.deepEqual(
      decoded,
      first.map((value) => Math.fround(value)),
    );
  });

  test("GET /v1/models lists the configured models, and reassigning models changes the answer", async (t) => {
    const { mock, agent } = await setUp(t, { models: [{ id: "a" }, { id: "b" }] });
    const list = async () =>
      (await (await request(`${mock.baseUrl}/models`, { dispatcher: agent })).body.json()) as {
        object: string;
        data: Array<{ id: string; object: string; context_length?: number }>;
      };
    const first = await list();
    assert.equal(first.object, "list");
    assert.deepEqual(
      first.data.map((model) => [model.id, model.object]),
      [
        ["a", "model"],
        ["b", "model"],
      ],
    );
    mock.models = [{ id: "c", context_length: 8192 }];
    assert.deepEqual((await list()).data[0]?.context_length, 8192);
    assert.deepEqual(
      mock.requests.map((recorded) => `${recorded.method} ${recorded.path}`),
      ["GET /v1/models", "GET /v1/models"],
    );
  });

  test("unknown routes are a 404 JSON error, and a chat request without a model is a 400", async (t) => {
    const { post } = await setUp(t);
    const unknown = await post("/nope", {});
    assert.equal(unknown.statusCode, 404);
    assert.ok(((await unknown.body.json()) as { error?: unknown }).error);
    const noModel = await post("/chat/completions", { messages: [] });
    assert.equal(noModel.statusCode, 400);
    assert.equal(((await noModel.body.json()) as { error: { param: string } }).error.param, "model");
  });
});

describe("mock upstream scripting", () => {
  test("queued steps are consumed first in first out, then the default answers", async (t) => {
    const { mock, post } = await setUp(t);
    mock.enqueue(CHAT, { kind: "json", status: 500, body: { error: { message: "boom" } } });
    mock.enqueue(CHAT, { kind: "json", body: chatCompletion("scripted", "x") });
    assert.equal(mock.pendingSteps(CHAT), 2);
    assert.equal(mock.pendingSteps(), 2);

    const statuses: number[] = [];
    const contents: string[] = [];
    for (let index = 0; index < 3; index++) {
      const response = await post("/chat/completions", { model: "m", messages: [] });
      statuses.push(response.statusCode);
      const body = (await response.body.json()) as Partial<ChatCompletionBody>;
      contents.push(body.choices?.[0]?.message.content ?? "error");
    }
    assert.deepEqual(statuses, [500, 200, 200]);
    assert.deepEqual(contents, ["error", "scripted", "echo from m"]);
    assert.equal(mock.pendingSteps(), 0);
  });

  test("setDefault replaces the built-in answer and can depend on the request", async (t) => {
    const { mock, post } = await setUp(t);
    mock.setDefault(CHAT, (recorded) => ({
      kind: "json",
      status: 200,
      body: { error: { message: `no capacity for ${(recorded.body as { model: string }).model}` } },
    }));
    const response = await post("/chat/completions", { model: "m9" });
    assert.equal(response.statusCode, 200);
    assert.deepEqual(await response.body.json(), { error: { message: "no capacity for m9" } });
  });

  test("reset clears queues, defaults and recorded requests", async (t) => {
    const { mock, post } = await setUp(t);
    const requests = mock.requests;
    mock.enqueue(CHAT, { kind: "reset" });
    mock.setDefault("POST /v1/embeddings", { kind: "hang" });
    await (await post("/models", {})).body.dump();
    mock.reset();
    assert.equal(mock.requests, requests);
    assert.equal(mock.requests.length, 0);
    assert.equal(mock.pendingSteps(), 0);
    const response = await post("/embeddings", { model: "e", input: "x" });
    assert.equal(response.statusCode, 200);
    await response.body.dump();
  });

  test("routes must name a method and a path", async (t) => {
    const { mock } = await setUp(t);
    assert.throws(() => mock.enqueue("/v1/chat/completions", { kind: "hang" }), /POST \/v1\/chat\/completions/);
    assert.throws(() => mock.setDefault("post /v1/x", { kind: "hang" }), TypeError);
  });

  test("waitForRequests resolves once enough requests arrived and rejects after its timeout", async (t) => {
    const { mock, post } = await setUp(t);
    const waiting = mock.waitForRequests(2);
    await (await post("/chat/completions", { model: "m" })).body.dump();
    await (await post("/chat/completions", { model: "m" })).body.dump();
    assert.equal((await waiting).length, 2);
    await assert.rejects(mock.waitForRequests(3, 20), /waited 20 ms for 3 requests, got 2/);
  });
});

describe("mock upstream step kinds", () => {
  test("json: any status, extra headers (case-insensitive override) and a real delay", async (t) => {
    const { mock, post } = await setUp(t);
    mock.enqueue(CHAT, {
      kind: "json",
      status: 503,
      body: { error: { message: "overloaded" } },
      headers: { "X-Request-Id": "r1", "Content-Type": "application/problem+json" },
      delayMs: 150,
    });
    const startedAtMs = Date.now();
    const response = await post("/chat/completions", { model: "m" });
    const elapsedMs = Date.now() - startedAtMs;
    assert.equal(response.statusCode, 503);
    assert.equal(response.headers["x-request-id"], "r1");
    assert.equal(response.headers["content-type"], "application/problem+json");
    assert.deepEqual(await response.body.json(), { error: { message: "overloaded" } });
    assert.ok(elapsedMs >= 140, `answered after ${elapsedMs} ms`);
  });

  test("text: a raw HTML error page", async (t) => {
    const { mock, post } = await setUp(t);
    const page = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    mock.enqueue(CHAT, { kind: "text", status: 502, body: page, headers: { "content-type": "text/html" } });
    const response = await post("/chat/completions", { model: "m" });
    assert.equal(response.statusCode, 502);
    assert.equal(response.headers["content-type"], "text/html");
    assert.equal(await response.body.text(), page);
  });

  test("rateLimited: a 429 with retry-after and any other header", async (t) => {
    const { mock, post } = await setUp(t);
    mock.enqueue(CHAT, rateLimited({ retryAfter: "7", headers: { "x-ratelimit-reset-requests": "1m2s" } }));
    const response = await post("/chat/completions", { model: "m" });
    assert.equal(response.statusCode, 429);
    assert.equal(response.headers["retry-after"], "7");
    assert.equal(response.headers["x-ratelimit-reset-requests"], "1m2s");
    assert.equal(((await response.body.json()) as { error: { code: string } }).error.code, "rate_limit_exceeded");
  });

  test("sse: each event is flushed when written and delays really wait between writes", async (t) => {
    const { mock, post } = await setUp(t);
    mock.enqueue(CHAT, {
      kind: "sse",
      events: [{ data: { n: 1 } }, { delayMs: 200 }, { data: "plain text" }, { raw: ": keep-alive\r\n\r\n" }],
    });
    const response = await post("/chat/completions", { model: "m" });
    const arrivals: Array<{ atMs: number; text: string }> = [];
    for await (const chunk of response.body) arrivals.push({ atMs: Date.now(), text: String(chunk) });
    const text = arrivals.map((arrival) => arrival.text).join("");
    assert.equal(text, 'data: {"n":1}\n\ndata: plain text\n\n: keep-alive\r\n\r\ndata: [DONE]\n\n');

    const firstArrival = arrivals.find((arrival) => arrival.text.includes('{"n":1}'));
    const secondArrival = arrivals.find((arrival) => arrival.text.includes("plain text"));
    assert.ok(firstArrival && secondArrival);
    assert.notEqual(firstArrival, secondArrival, "the first event was held back until the second");
    const gapMs = secondArrival.atMs - firstArrival.atMs;
    assert.ok(gapMs >= 180, `events arrived ${gapMs} ms apart`);
  });

  test("sse: chatStream with delays streams word by word", async (t) => {
    const { mock, post } = await setUp(t);
    mock.enqueue(CHAT, { kind: "sse", events: chatStream(["a", "b"], "m", { delayMs: 60, usage: true }) });
    const startedAtMs = Date.now();
    const response = await post("/chat/completions", { model: "m" });
    const data = dataOf(await response.body.text());
    // role, a, b, finish and usage chunks: four delays between five events.
    assert.ok(Date.now() - startedAtMs >= 4 * 55);
    assert.equal(data.length, 6);
    assert.deepEqual((JSON.parse(data[4] ?? "") as ChatChunkBody).usage, {
      prompt_tokens: 10,
      completion_tokens: 2,
      total_tokens: 12,
    });
  });

  test("sse: headersDelayMs delays the status line, and status and headers are scriptable", async (t) => {
    const { mock, post } = await setUp(t);
    mock.enqueue(CHAT, {
      kind: "sse",
      events: [],
      status: 201,
      headers: { "x-upstream": "yes" },
      headersDelayMs: 150,
    });
    const startedAtMs = Date.now();
    const response = await post("/chat/completions", { model: "m" });
    assert.ok(Date.now() - startedAtMs >= 140);
    assert.equal(response.statusCode, 201);
    assert.equal(response.headers["x-upstream"], "yes");
    assert.deepEqual(dataOf(await response.body.text()), ["[DONE]"]);
  });

  test("sse end close-without-done: a clean end without [DONE]", async (t) => {
    const { mock, post } = await setUp(t);
    mock.enqueue(CHAT, { kind: "sse", events: [{ data: { n: 1 } }], end: "close-without-done" });
    const response = await post("/chat/completions", { model: "m" });
    assert.equal(await response.body.text(), 'data: {"n":1}\n\n');
  });

  test("sse end destroy: the events written arrive, then the body fails", async (t) => {
    const { mock, post } = await setUp(t);
    mock.enqueue(CHAT, { kind: "sse", events: [{ data: { n: 1 } }, { data: { n: 2 } }], end: "destroy" });
    const response = await post("/chat/completions", { model: "m" });
    let received = "";
    await assert.rejects(async () => {
      for await (const chunk of response.body) received += String(chunk);
    });
    assert.equal(received, 'data: {"n":1}\n\ndata: {"n":2}\n\n');
    await waitUntil(() => mock.openConnections() === 0);
  });

  test("sse end hang: the stream stays open until the client aborts", async (t) => {
    const { mock, post } = await setUp(t);
    mock.enqueue(CHAT, { kind: "sse", events: [{ data: { n: 1 } }], end: "hang" });
    const controller = new AbortController();
    const response = await post("/chat/completions", { model: "m" }, controller.signal);
    const iterator = response.body[Symbol.asyncIterator]();
    assert.equal(String((await iterator.next()).value), 'data: {"n":1}\n\n');

    const next = iterator.next();
    const outcome = await Promise.race([next.then(() => "data"), sleepMs(300).then(() => "still open")]);
    assert.equal(outcome, "still open");
    assert.equal(mock.activeRequests(), 1);
    assert.equal(mock.openConnections(), 1);

    controller.abort();
    await assert.rejects(next);
    await waitUntil(() => mock.activeRequests() === 0 && mock.openConnections() === 0);
  });

  test("reset: the connection is reset before any response byte", async (t) => {
    const { mock, post } = await setUp(t);
    mock.enqueue(CHAT, { kind: "reset" });
    await assert.rejects(post("/chat/completions", { model: "m" }), (error: Error & { code?: string }) => {
      assert.match(String(error.code), /ECONNRESET|UND_ERR_SOCKET/);
      return true;
    });
    assert.equal(mock.requests.length, 1);
    await waitUntil(() => mock.openConnections() === 0);
  });

  test("hang: no answer until the client aborts", async (t) => {
    const { mock, post } = await setUp(t);
    mock.enqueue(CHAT, { kind: "hang" });
    const startedAtMs = Date.now();
    await assert.rejects(post("/chat/completions", { model: "m" }, AbortSignal.timeout(200)));
    assert.ok(Date.now() - startedAtMs >= 190);
    assert.equal(mock.requests.length, 1);
    await waitUntil(() => mock.activeRequests() === 0 && mock.openConnections() === 0);
  });

  test("close() ends hanging requests and streams at once", async (t) => {
    const { mock, post } = await setUp(t);
    mock.enqueue(CHAT, { kind: "hang" }, { kind: "sse", events: [{ delayMs: 60_000 }] });
    const hanging = post("/chat/completions", { model: "m" });
    const streaming = await Promise.all([post("/chat/completions", { model: "m" }), mock.waitForRequests(2)]).then(
      ([response]) => response,
    );
    assert.equal(mock.activeRequests(), 2);
    const startedAtMs = Date.now();
    await mock.close();
    assert.ok(Date.now() - startedAtMs < 1000);
    assert.equal(mock.openConnections(), 0);
    await assert.rejects(hanging);
    await assert.rejects(streaming.body.text());
    await mock.close();
  });

  test("handler: full control of the response, and a throwing handler becomes a 500", async (t) => {
    const { mock, post } = await setUp(t);
    mock.enqueue(
      CHAT,
      {
        kind: "handler",
        handle: (recorded, response) => {
          response.writeHead(418, { "content-type": "text/plain" });
          response.end(`teapot ${recorded.path}`);
        },
      },
      {
        kind: "handler",
        handle: async () => {
          throw new Error("scripted failure");
        },
      },
    );
    const custom = await post("/chat/completions", { model: "m" });
    assert.equal(custom.statusCode, 418);
    assert.equal(await custom.body.text(), "teapot /v1/chat/completions");
    const failed = await post("/chat/completions", { model: "m" });
    assert.equal(failed.statusCode, 500);
    assert.match(await failed.body.text(), /scripted failure/);
  });
});

function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
