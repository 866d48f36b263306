// Keep-alives while a stream waits (`server.stream_keepalive_ms`, docs/streaming.md "Keep-alives"): a request queued
// for a rate limit gets keep-alives, then its answer; one that fails after its head went out early gets its door's
// in-stream error with the message and type its HTTP error would have had, which each SDK raises; a client that
// leaves while only keep-alives flow is recorded as gone.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createOpenAI } from "@ai-sdk/openai";
import Anthropic from "@anthropic-ai/sdk";
import { Agent, OpenAIProvider, Runner, setTracingDisabled } from "@openai/agents";
import { streamText } from "ai";
import OpenAI, { APIError } from "openai";
import { CHAT_ROUTE, logCollector, openAiClient, recordsOf, send } from "../helpers/e2e.ts";
import { commentsOf, keepAliveScene, newestRecord, postRaw, UPSTREAM_MODEL } from "../helpers/keepalive-scene.ts";
import { chatStream, type MockStep } from "../helpers/mock-upstream.ts";
import { postJson, waitUntil } from "../helpers/sse-client.ts";

type AgentsClient = NonNullable<NonNullable<ConstructorParameters<typeof OpenAIProvider>[0]>["openAIClient"]>;

const CHAT_BODY = { model: "m", stream: true, messages: [{ role: "user", content: "hi" }] };
const quick: MockStep = { kind: "sse", events: chatStream(["Served", "."], UPSTREAM_MODEL) };
/** Alpha fails after 900 ms, the only candidate: every attempt failed, after the head went out. */
const slowFailure: MockStep = { kind: "json", status: 500, delayMs: 900, body: { error: { message: "boom" } } };

/** From /metrics: how many chat requests waited in the queue, and how many chat streams committed their head early. */
async function queueWaits(gateway: Parameters<typeof send>[0]): Promise<{ count: number; earlyCommits: number }> {
  const { text } = await send(gateway, "GET", "/metrics");
  const counted = (pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? 0);
  return {
    count: counted(/^llm_gateway_queue_wait_seconds_count\{endpoint="chat"\} (\d+)$/m),
    earlyCommits: counted(/^llm_gateway_stream_early_commits_total\{endpoint="chat"\} (\d+)$/m),
  };
}

describe("queued for a rate limit", () => {
  test("rps: 1 — the second stream gets keep-alives while it waits its turn, then its answer", async (t) => {
    const { mock, gateway } = await keepAliveScene(t, { limits: "{ rps: 1 }", routing: "{ queue_timeout_ms: 5000 }" });
    mock.setDefault(CHAT_ROUTE, quick);
    // Both sent at once: the one planned second waits its turn, about a second however loaded the machine. (Sent after
    // the first had been read whole, or once it reached the upstream, it sometimes came so late under load that it
    // waited less than a keep-alive interval, or not at all.)
    const answers = await Promise.all([1, 2].map(() => postRaw(gateway, "/v1/chat/completions", CHAT_BODY)));
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.match(answer.text, /"content":"Served"[\s\S]*data: \[DONE\]\n\n$/);
    }
    const [second, first] = answers.toSorted((a, b) => commentsOf(b.text).length - commentsOf(a.text).length);
    assert.ok(second !== undefined && first !== undefined);
    assert.ok(commentsOf(second.text).length >= 1, `keep-alives while queued:\n${second.text}`);
    // The records are published as their streams are settled, which may come just after their last bytes.
    let records = (await recordsOf(gateway, "chat")).records;
    for (const deadline = Date.now() + 20_000; records.length < 2 && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      records = (await recordsOf(gateway, "chat")).records;
    }
    const both = records as { outcome?: string; earlyCommitMs?: number }[];
    assert.deepEqual(
      both.map((record) => record.outcome),
      ["success", "success"],
    );
    assert.ok(
      both.some((record) => record.earlyCommitMs !== undefined),
      "the record says the head went out early",
    );
    // One alone waited in the queue. The other may have committed its head early too: on a loaded machine its quick
    // upstream can take longer than the 200 ms interval, which is no wait in the queue.
    const earlyFirst = commentsOf(first.text).length > 0 ? 1 : 0;
    assert.deepEqual(await queueWaits(gateway), { count: 1, earlyCommits: 1 + earlyFirst }, "one alone queued");
  });

  test("the queue's time runs out: the in-stream 429 says so and when to retry (openai SDK raises it)", async (t) => {
    const { mock, gateway } = await keepAliveScene(t, { limits: "{ rpm: 1 }", routing: "{ queue_timeout_ms: 700 }" });
    mock.setDefault(CHAT_ROUTE, quick);
    await postRaw(gateway, "/v1/chat/completions", CHAT_BODY);
    const raw = await postRaw(gateway, "/v1/chat/completions", CHAT_BODY);
    assert.equal(raw.status, 200, "the head went out before the queue's time ran out");
    assert.ok(commentsOf(raw.text).length >= 2, raw.text);
    const last = raw.text.trimEnd().split("\n\n").at(-1) ?? "";
    const error = (
      JSON.parse(last.replace(/^data: /, "")) as { error: { code: string; type: string; message: string } }
    ).error;
    assert.equal(error.code, "rate_limit_exceeded");
    assert.match(error.message, /rate-limited/);
    assert.match(error.message, /available again in \d+ s/);
    // The keep-alives were the wait in the queue; the error says so, and how long (0.7 s, queue_timeout_ms; more when
    // a loaded machine runs its timer late).
    assert.match(error.message, /It waited (?:0\.[7-9]|[1-9]\d*\.\d) s in the gateway's queue/);
    assert.doesNotMatch(raw.text, /\[DONE\]/);
    const record = await newestRecord(gateway, "chat");
    assert.equal(record.status, 429);
    assert.ok(record.earlyCommitMs !== undefined);

    const stream = await openAiClient(gateway).chat.completions.create({
      model: "m",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    const thrown = await (async () => {
      try {
        for await (const _ of stream) {
          // Nothing comes before the error.
        }
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    assert.ok(thrown instanceof APIError, String(thrown));
    assert.equal(thrown.code, "rate_limit_exceeded");
  });
});

describe("every attempt fails after the early head: the door's in-stream error", () => {
  test("chat: `data: {error}` with the 502's message and type, no [DONE]", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, slowFailure);
    const raw = await postRaw(gateway, "/v1/chat/completions", CHAT_BODY);
    assert.equal(raw.status, 200);
    assert.ok(commentsOf(raw.text).length >= 3, raw.text);
    assert.match(
      raw.text,
      /data: \{"error":\{"message":"No upstream could serve `m`\.[^\n]*"code":"upstream_unavailable"/,
    );
    assert.doesNotMatch(raw.text, /\[DONE\]/);
    const record = await newestRecord(gateway, "chat");
    assert.equal(record.status, 502);
    assert.equal(record.errorCode, "upstream_unavailable");
  });

  test("Messages: pings, then `event: error`, which the Anthropic SDK raises", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, slowFailure);
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: "x", maxRetries: 0 });
    const stream = anthropic.messages.stream({
      model: "m",
      max_tokens: 50,
      messages: [{ role: "user", content: "hi" }],
    });
    const failure = await stream.finalMessage().then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(failure instanceof Anthropic.APIError, String(failure));
    assert.match(failure.message, /No upstream could serve/);
    assert.match(failure.message, /api_error/);
  });

  test("Responses: `error` then `response.failed`; the openai SDK's stream fails", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, slowFailure, slowFailure);
    const raw = await postRaw(gateway, "/v1/responses", { model: "m", stream: true, input: "hi" });
    assert.ok(commentsOf(raw.text).length >= 3, raw.text);
    assert.match(raw.text, /event: error\ndata: \{"type":"error","sequence_number":\d+,"code":"upstream_unavailable"/);
    assert.match(raw.text, /event: response\.failed\n/);
    const stream = openAiClient(gateway).responses.stream({ model: "m", input: "hi" });
    const failure = await stream.finalResponse().then(
      () => undefined,
      (error: unknown) => error,
    );
    // The SDK raises the in-band `error` event as an APIError (as for a committed stream's failure,
    // cut-streams-responses.test.ts): `finalResponse()` rejects with it.
    assert.equal((failure as { code?: unknown } | undefined)?.code, "upstream_unavailable");
  });
  test("OpenAI Agents SDK on an openai client: a streamed run raises the gateway's message, as for the HTTP 502", async (t) => {
    // A run given the application's own `openai` client (OpenAIProvider's openAIClient, setDefaultOpenAIClient)
    // read the flat `error` event as a terminal state and raised a ModelBehaviorError without the message.
    setTracingDisabled(true);
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, slowFailure);
    const openAIClient = new OpenAI({ apiKey: "x", baseURL: gateway.baseUrl, maxRetries: 0 });
    // The agents SDK takes openai 6 clients (its types name both majors), but under exactOptionalPropertyTypes this
    // project's openai 6 does not type-check against its own openai 7.
    const runner = new Runner({
      modelProvider: new OpenAIProvider({ openAIClient: openAIClient as unknown as AgentsClient }),
    });
    const agent = new Agent({ name: "Assistant", instructions: "Answer.", model: "m" });
    const failure = await (async () => {
      const result = await runner.run(agent, "hi", { stream: true });
      for await (const _event of result) {
        // Drained: the run goes on as its events are read.
      }
      await result.completed;
    })().then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(failure instanceof Error, String(failure));
    assert.match(failure.message, /No upstream could serve `m`/, `${failure.name}: ${failure.message}`);
  });

  test("AI SDK: the chat provider's and the Responses provider's streams end with an error part", async (t) => {
    const { mock, gateway } = await keepAliveScene(t);
    mock.enqueue(CHAT_ROUTE, slowFailure, slowFailure);
    const openai = createOpenAI({ baseURL: gateway.baseUrl, apiKey: "x" });
    for (const model of [openai.chat("m"), openai("m")]) {
      const result = streamText({ model, prompt: "hi", maxRetries: 0, onError: () => {} });
      const errors: unknown[] = [];
      let text = "";
      for await (const part of result.fullStream) {
        if (part.type === "error") errors.push(part.error);
        if (part.type === "text-delta") text += part.text;
      }
      assert.equal(text, "");
      assert.equal(errors.length, 1, `${model.provider}: ${errors.map(String).join(" | ")}`);
      assert.match(JSON.stringify(errors[0]) + String(errors[0]), /No upstream could serve|upstream_unavailable/);
    }
  });
});

test("a client that leaves while only keep-alives flow is recorded client_aborted, and the upstream hung up on", async (t) => {
  const { mock, gateway } = await keepAliveScene(t);
  mock.enqueue(CHAT_ROUTE, { kind: "hang" });
  const controller = new AbortController();
  const answer = await postJson(`${gateway.url}/v1/chat/completions`, CHAT_BODY, { signal: controller.signal });
  assert.equal(answer.statusCode, 200, "the head went out early");
  const reader = answer.body[Symbol.asyncIterator]();
  const first = await reader.next();
  assert.match(Buffer.from(first.value as Uint8Array).toString(), /^: keep-alive/);
  controller.abort();
  await waitUntil(() => mock.activeRequests() === 0, "the upstream request aborted");
  // The record is published once the pipeline has settled the request; the request log lists it then.
  let record: Awaited<ReturnType<typeof newestRecord>> | undefined;
  for (let tries = 0; tries < 60 && record?.outcome !== "client_aborted"; tries++) {
    record = await newestRecord(gateway, "chat").catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(record);
  assert.equal(record.outcome, "client_aborted");
  assert.equal(record.status, 499);
});

test("a shutdown while a stream is queued after its early head: the in-stream 503, and the close is not held", async (t) => {
  // The queue's time and the shutdown's bound far above the close's: a close held by the queued stream waits 60 s
  // (the shutdown's bound) and fails the bound below by half a minute, not by a loaded machine's slowness.
  const { mock, gateway } = await keepAliveScene(t, {
    limits: "{ rpm: 1 }",
    routing: "{ queue_timeout_ms: 120000 }",
    shutdownTimeoutMs: 60_000,
  });
  mock.setDefault(CHAT_ROUTE, quick);
  await postRaw(gateway, "/v1/chat/completions", CHAT_BODY);
  const answer = await postJson(`${gateway.url}/v1/chat/completions`, CHAT_BODY);
  assert.equal(answer.statusCode, 200, "the head went out while it was queued");
  const reader = answer.body[Symbol.asyncIterator]();
  assert.match(Buffer.from((await reader.next()).value as Uint8Array).toString(), /^: keep-alive/);
  const closedAtMs = performance.now();
  const closing = gateway.close();
  let rest = "";
  for (let next = await reader.next(); next.done !== true; next = await reader.next()) {
    rest += Buffer.from(next.value as Uint8Array).toString();
  }
  assert.match(rest, /data: \{"error":\{"message":"The gateway is shutting down[^\n]*"code":"service_unavailable"/);
  assert.doesNotMatch(rest, /\[DONE\]/);
  await closing;
  const closeMs = performance.now() - closedAtMs;
  assert.ok(closeMs < 30_000, `closed ${Math.round(closeMs)} ms after it began`);
  assert.equal(mock.requests.filter((request) => request.path.endsWith("/chat/completions")).length, 1);
});

test("a failure after the early head is logged at error level, as its HTTP error is (chat and Messages doors)", async (t) => {
  for (const keepAliveMs of [0, 200]) {
    const log = logCollector();
    const { mock, gateway } = await keepAliveScene(t, {
      keepAliveMs,
      gateway: { logLevel: "info", logStream: log.stream },
    });
    mock.enqueue(CHAT_ROUTE, slowFailure, slowFailure);
    await postRaw(gateway, "/v1/chat/completions", CHAT_BODY);
    await postRaw(gateway, "/v1/messages", {
      model: "m",
      max_tokens: 5,
      stream: true,
      messages: [{ role: "user", content: "hi" }],
    });
    const errors = log.lines.filter((line) => /"level":50/.test(line) && /No upstream could serve/.test(line));
    assert.equal(errors.length, 2, `keep-alive ${keepAliveMs} ms: ${log.lines.join("")}`);
  }
});
