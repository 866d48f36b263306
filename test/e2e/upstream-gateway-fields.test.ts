// An upstream that itself sends `x_gateway` (another LLM Gateway used as a provider, or a hostile upstream): the
// gateway reads only its own facts. The upstream's `x_gateway` is taken off every answer and chunk on every door, and
// an upstream gateway's `usage_estimated` beside a usage is read deliberately: the tokens are an estimate either way,
// so the client is told so (the gateway's own mark) and the record says `isUsageEstimated` (docs/protocols.md
// "Estimated usage"). Before, the chat door passed the upstream's `x_gateway` on (its `continuation` marker read as
// this gateway's), and the Responses and Messages doors read its `usage_estimated` by accident: the client was told
// "estimated" while the record and the metrics said reported.
import assert from "node:assert/strict";
import { describe, type TestContext, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import { estimateChatPrompt } from "../../src/limits/token-estimate.ts";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { rowOf, statsOf } from "../helpers/e2e.ts";
import { chatCompletion, chatStream, type MockStep, type SseScript } from "../helpers/mock-upstream.ts";
import { waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, startTwoProviders, type TwoProviders } from "../helpers/two-providers.ts";

const PROMPT = "Say hello.";
const WORDS = ["Hello", " there", "!"];
const FOREIGN = { continuation: { provider: "far", model: "x", afterChars: 3, reason: "cut", mode: "prefill" } };

async function scene(t: TestContext): Promise<TwoProviders & { records: RequestRecord[] }> {
  const started = await startTwoProviders(t);
  const records: RequestRecord[] = [];
  started.gateway.runtime.onRecord((record) => records.push(record));
  return { ...started, records };
}

async function onlyRecord(records: RequestRecord[]): Promise<RequestRecord> {
  await waitUntil(() => records.length === 1, "the request's record");
  return records[0] as RequestRecord;
}

/** A chat answer with a reported usage and the upstream's own `x_gateway`. */
function answerWith(xGateway: unknown): MockStep {
  return {
    kind: "json",
    body: { ...chatCompletion(WORDS.join(""), MODEL, { prompt_tokens: 7, completion_tokens: 3 }), x_gateway: xGateway },
  };
}

/** A chat stream whose every chunk carries the upstream's `x_gateway` (its usage chunk included). */
function streamWith(xGateway: unknown): MockStep {
  const events = chatStream(WORDS, MODEL, { usage: { prompt_tokens: 9, completion_tokens: 4 } }).map(
    (event): SseScript =>
      "data" in event && typeof event.data === "object" ? { data: { ...event.data, x_gateway: xGateway } } : event,
  );
  return { kind: "sse", events };
}

async function metricLines(s: TwoProviders): Promise<string[]> {
  const response = await fetch(`${s.gateway.url}/metrics`);
  const text = await response.text();
  return text.split("\n").filter((line) => line.startsWith("llm_gateway_tokens_total{"));
}

describe("an upstream's x_gateway is not the gateway's", () => {
  test("chat JSON: the upstream's continuation marker is taken off; its usage is reported", async (t) => {
    const s = await scene(t);
    s.primary.enqueue(CHAT_ROUTE, answerWith(FOREIGN));
    const completion = await s.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: PROMPT }],
    });
    assert.equal(completion.usage?.prompt_tokens, 7);
    assert.equal((completion as unknown as { x_gateway?: unknown }).x_gateway, undefined);
    const record = await onlyRecord(s.records);
    assert.equal(record.isUsageEstimated, undefined);
  });

  test("chat stream: no chunk keeps the upstream's x_gateway", async (t) => {
    const s = await scene(t);
    s.primary.enqueue(CHAT_ROUTE, streamWith(FOREIGN));
    const stream = await s.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: PROMPT }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: Record<string, unknown>[] = [];
    for await (const chunk of stream) chunks.push(chunk as unknown as Record<string, unknown>);
    assert.ok(chunks.length > WORDS.length);
    assert.deepEqual(
      chunks.filter((chunk) => chunk.x_gateway !== undefined),
      [],
    );
    assert.equal((await onlyRecord(s.records)).isUsageEstimated, undefined);
  });

  test("an upstream's usage_estimated without a usage is dropped: the estimate is the gateway's own", async (t) => {
    const s = await scene(t);
    const { usage: _reported, ...answer } = chatCompletion(WORDS.join(""), MODEL);
    s.primary.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: { ...answer, x_gateway: { ...FOREIGN, usage_estimated: true } },
    });
    const completion = await s.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: PROMPT }],
    });
    assert.deepEqual((completion as unknown as { x_gateway?: unknown }).x_gateway, { usage_estimated: true });
    assert.equal((await onlyRecord(s.records)).isUsageEstimated, true);
  });
});

describe("an upstream gateway's usage_estimated beside a usage is read deliberately, as estimated", () => {
  test("Responses JSON: marked for the client, and the record and the metrics say estimated", async (t) => {
    const s = await scene(t);
    s.primary.enqueue(CHAT_ROUTE, answerWith({ ...FOREIGN, usage_estimated: true }));
    const response = await s.client.responses.create({ model: MODEL, input: PROMPT });
    assert.equal(response.usage?.input_tokens, 7);
    assert.deepEqual((response as unknown as { x_gateway?: unknown }).x_gateway, { usage_estimated: true });
    const record = await onlyRecord(s.records);
    assert.equal(record.isUsageEstimated, true, "the record agrees with what the client was told");
    assert.equal(record.tokensIn, 7);
    const lines = await metricLines(s);
    assert.ok(
      lines.some(
        (line) => line.includes('direction="in"') && line.includes('source="estimated"') && line.endsWith(" 7"),
      ),
      lines.join("\n"),
    );
    assert.ok(!lines.some((line) => line.includes('source="reported"') && !line.endsWith(" 0")), lines.join("\n"));
  });

  test("Messages stream: message_delta marked, the record estimated", async (t) => {
    const s = await scene(t);
    s.primary.enqueue(CHAT_ROUTE, streamWith({ usage_estimated: true }));
    const anthropic = new Anthropic({ baseURL: s.gateway.url, apiKey: "x", maxRetries: 0 });
    const stream = anthropic.messages.stream({
      model: MODEL,
      max_tokens: 100,
      messages: [{ role: "user", content: PROMPT }],
    });
    let delta: Record<string, unknown> | undefined;
    stream.on("streamEvent", (event) => {
      if (event.type === "message_delta") delta = event as unknown as Record<string, unknown>;
    });
    const final = await stream.finalMessage();
    assert.equal(final.usage.output_tokens, 4);
    assert.deepEqual(delta?.x_gateway, { usage_estimated: true });
    const record = await onlyRecord(s.records);
    assert.equal(record.isUsageEstimated, true);
    assert.equal(record.tokensOut, 4);
  });

  test("a reported usage with a foreign x_gateway on the Messages door: not marked", async (t) => {
    const s = await scene(t);
    s.primary.enqueue(CHAT_ROUTE, streamWith({ usage_estimated: false, ...FOREIGN }));
    const anthropic = new Anthropic({ baseURL: s.gateway.url, apiKey: "x", maxRetries: 0 });
    const message = await anthropic.messages.create({
      model: MODEL,
      max_tokens: 100,
      messages: [{ role: "user", content: PROMPT }],
      stream: false,
    });
    assert.equal((message as unknown as { x_gateway?: unknown }).x_gateway, undefined);
    assert.equal((await onlyRecord(s.records)).isUsageEstimated, undefined);
  });
});

describe("a native Responses provider that is another gateway", () => {
  const RESPONSES_ROUTE = "POST /v1/responses";

  function nativeResponse(status: "completed" | "in_progress"): Record<string, unknown> {
    const isDone = status === "completed";
    return {
      id: "resp_upstream_1",
      object: "response",
      created_at: 1767225600,
      status,
      error: null,
      incomplete_details: null,
      model: MODEL,
      output: isDone
        ? [
            {
              id: "msg_1",
              type: "message",
              status: "completed",
              role: "assistant",
              content: [{ type: "output_text", text: "Hi.", annotations: [] }],
            },
          ]
        : [],
      usage: isDone ? { input_tokens: 11, output_tokens: 4, total_tokens: 15 } : null,
      store: false,
      // Every event's response carries the upstream gateway's x_gateway.
      x_gateway: { ...FOREIGN, usage_estimated: true },
    };
  }

  test("stream: the foreign x_gateway is taken off every event; the estimate beside the final usage is kept and recorded", async (t) => {
    const s = await startTwoProviders(t, { primary: { responses_api: "native" } });
    const records: RequestRecord[] = [];
    s.gateway.runtime.onRecord((record) => records.push(record));
    const events = [
      { type: "response.created", response: nativeResponse("in_progress") },
      { type: "response.completed", response: nativeResponse("completed") },
    ];
    s.primary.enqueue(RESPONSES_ROUTE, {
      kind: "sse",
      events: events.map((event, index) => ({
        raw: `event: ${event.type}\ndata: ${JSON.stringify({ ...event, sequence_number: index })}\n\n`,
      })),
    });
    const stream = s.client.responses.stream({ model: MODEL, input: PROMPT });
    const seen: Record<string, unknown>[] = [];
    for await (const event of stream) {
      const response = (event as unknown as { response?: Record<string, unknown> }).response;
      if (response !== undefined) seen.push(response);
    }
    assert.equal(seen.length, 2);
    assert.equal(seen[0]?.x_gateway, undefined, "no usage beside it: nothing of it is kept");
    assert.deepEqual(seen[1]?.x_gateway, { usage_estimated: true }, "the gateway's own mark, read deliberately");
    const record = await onlyRecord(records);
    assert.equal(record.isUsageEstimated, true);
    assert.equal(record.tokensIn, 11);
  });
});

describe("an upstream gateway's estimate the client did not ask to see", () => {
  test("chat stream without include_usage: the stripped usage is still recorded as estimated, on both counters", async (t) => {
    // The gateway asks for usage itself (stream_options.include_usage) and strips the usage chunk: the client never
    // sees the upstream's mark, yet the record's tokens are the upstream gateway's estimate. Before, the attempt said
    // estimated while the record said reported: tokens_total counted `estimated`, client_tokens_total `reported`,
    // and the dashboard showed the tokens without `≈`.
    const s = await scene(t);
    s.primary.enqueue(CHAT_ROUTE, streamWith({ usage_estimated: true }));
    const stream = await s.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: PROMPT }],
      stream: true,
    });
    const chunks: Record<string, unknown>[] = [];
    for await (const chunk of stream) chunks.push(chunk as unknown as Record<string, unknown>);
    assert.deepEqual(
      chunks.filter((chunk) => chunk.usage !== undefined && chunk.usage !== null),
      [],
      "the client did not ask for usage",
    );
    const record = await onlyRecord(s.records);
    assert.equal(record.tokensIn, 9);
    assert.equal(record.attempts[0]?.isUsageEstimated, true);
    assert.equal(record.isUsageEstimated, true, "the record agrees with its attempt");
    const response = await fetch(`${s.gateway.url}/metrics`);
    const clientLines = (await response.text())
      .split("\n")
      .filter((line) => line.startsWith("llm_gateway_client_tokens_total{"));
    assert.ok(
      clientLines.some(
        (line) => line.includes('direction="in"') && line.includes('source="estimated"') && line.endsWith(" 9"),
      ),
      clientLines.join("\n"),
    );
    assert.ok(
      !clientLines.some((line) => line.includes('source="reported"') && !line.endsWith(" 0")),
      clientLines.join("\n"),
    );
  });
});

describe("an upstream gateway's estimate teaches the prompt calibration nothing", () => {
  // The calibration learns a deployment's tokenizer from its provider's reports (docs/limits.md "Token estimation").
  // An upstream gateway's `usage_estimated` prompt count is its estimator's (the same estimator, perhaps with its own
  // factor and safety margin), not a tokenizer's: learned, it moved the factor off 1 from no evidence at all (or
  // stacked a second safety margin), so context fit, budgets and the estimates the client is told drifted.
  const LONG = Array.from({ length: 500 }, (_, index) => `word${index % 7 === 0 ? "s" : ""} of text`).join(" ");
  const LONG_MESSAGES = [{ role: "user" as const, content: LONG }];
  const halved = Math.round(estimateChatPrompt(LONG_MESSAGES, undefined).promptTokens / 2);

  async function factorOf(s: TwoProviders): Promise<number> {
    const row = rowOf(await statsOf(s.gateway), "alpha/m") as unknown as { prompt_token_factor: number };
    return row.prompt_token_factor;
  }

  test("JSON: the factor stays 1; the same answer without the mark teaches it", async (t) => {
    const s = await scene(t);
    const marked = {
      ...chatCompletion("ok", MODEL, { prompt_tokens: halved, completion_tokens: 1 }),
      x_gateway: { usage_estimated: true },
    };
    s.primary.enqueue(CHAT_ROUTE, { kind: "json", body: marked });
    await s.client.chat.completions.create({ model: MODEL, messages: LONG_MESSAGES });
    assert.equal(await factorOf(s), 1, "an estimate is no report");
    const record = await onlyRecord(s.records);
    assert.deepEqual(
      [record.isUsageEstimated, record.attempts[0]?.tokensIn, record.attempts[0]?.isUsageEstimated],
      [true, halved, true],
      "the attempt says estimated, as a stream's does",
    );
    s.primary.enqueue(CHAT_ROUTE, {
      kind: "json",
      body: chatCompletion("ok", MODEL, { prompt_tokens: halved, completion_tokens: 1 }),
    });
    await s.client.chat.completions.create({ model: MODEL, messages: LONG_MESSAGES });
    assert.ok((await factorOf(s)) < 0.9, "a report teaches (the test would show a learning)");
  });

  test("stream: the factor stays 1", async (t) => {
    const s = await scene(t);
    const events = chatStream(WORDS, MODEL, { usage: { prompt_tokens: halved, completion_tokens: 3 } }).map(
      (event): SseScript =>
        "data" in event && typeof event.data === "object"
          ? { data: { ...event.data, x_gateway: { usage_estimated: true } } }
          : event,
    );
    s.primary.enqueue(CHAT_ROUTE, { kind: "sse", events });
    const stream = await s.client.chat.completions.create({ model: MODEL, messages: LONG_MESSAGES, stream: true });
    for await (const _chunk of stream) {
      // drained
    }
    await waitUntil(() => s.records.length === 1, "the request's record");
    assert.equal(s.records[0]?.isUsageEstimated, true);
    assert.equal(await factorOf(s), 1, "an estimate is no report");
  });
});

describe("a user's text that says x_gateway is the user's", () => {
  test("chat stream: content naming x_gateway passes untouched, beside a chunk's foreign field or without one", async (t) => {
    const s = await scene(t);
    const words = ['Use "x_gateway": {"usage_estimated": true}', " and", ' "x_gateway" again.'];
    // Only the first word's chunk carries a (foreign) top-level x_gateway: it is re-serialised, its text naming the
    // field too; the others pass as they came.
    const events = chatStream(words, MODEL).map(
      (event, index): SseScript =>
        index === 1 && "data" in event && typeof event.data === "object"
          ? { data: { ...event.data, x_gateway: FOREIGN } }
          : event,
    );
    s.primary.enqueue(CHAT_ROUTE, { kind: "sse", events });
    const stream = await s.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: 'Say "x_gateway".' }],
      stream: true,
    });
    let text = "";
    const marked: unknown[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      const field = (chunk as unknown as { x_gateway?: unknown }).x_gateway;
      if (field !== undefined) marked.push(field);
    }
    assert.equal(text, words.join(""));
    assert.deepEqual(marked, []);
    const sent = s.primary.requests[0]?.body as { messages: { content: string }[] };
    assert.equal(sent.messages[0]?.content, 'Say "x_gateway".', "the prompt is sent as written");
  });
});
