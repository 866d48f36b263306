// W3C trace context through the gateway, over loopback: a caller's `traceparent` reaches each upstream attempt with the
// caller's trace id and a span id of the attempt's own (failover: two attempts, two ids), the record keeps the ids, and
// an OTLP receiver started here gets spans with those ids and parent links, without a key or a prompt. A collector
// that hangs never holds a request: its spans are dropped past the queue's bound and counted.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { chatRequests, openAiClient, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, chatStream, type MockUpstream, rateLimited } from "../helpers/mock-upstream.ts";
import { otlpCollector } from "../helpers/otlp-collector.ts";
import { waitUntil } from "../helpers/sse-client.ts";
import { CHAT_ROUTE, MODEL, startTwoProviders } from "../helpers/two-providers.ts";

const CHAT = "POST /v1/chat/completions";
const CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN = "00f067aa0ba902b7";
const TRACEPARENT = `00-${CALLER_TRACE}-${CALLER_SPAN}-01`;
const TRACESTATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
const PROMPT = "SecretPromptWords-7Hq2";
const TRACEPARENT_FORMAT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;

function twoProviders(alpha: MockUpstream, beta: MockUpstream, extra = ""): string {
  return `providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha-secret-key-0123456789
    retries: 0
    headers: { Traceparent: "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01" }
    models:
      m: { id: alpha-m, priority: 10 }
  - name: beta
    base_url: ${beta.baseUrl}
    api_key: sk-beta-secret-key-0123456789
    retries: 0
    models:
      m: { id: beta-m, priority: 1 }
routing:
  max_wait_for_better_ms: 0
${extra}`;
}

async function recordOf(gateway: Parameters<typeof send>[0], id: string): Promise<RequestRecord> {
  // The record is published after the answer is written: polled for.
  let found: RequestRecord | undefined;
  for (let tries = 0; tries < 50 && found === undefined; tries++) {
    const response = await send(gateway, "GET", `/v1/gateway/requests/${id}`);
    if (response.status === 200) found = response.json as RequestRecord;
    else await new Promise((resolveWait) => setTimeout(resolveWait, 20));
  }
  assert.ok(found !== undefined, `no record for ${id}`);
  return found;
}

function headerOf(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(", ") : value;
}

describe("W3C trace context", () => {
  test("failover: each attempt is sent the caller's trace id under a span id of its own; the record and the exported spans say the same", async (t) => {
    const receiver = await otlpCollector(t);
    const alpha = await useMock(t);
    const beta = await useMock(t);
    const gateway = await useGateway(t, twoProviders(alpha, beta, `traces:\n  otlp_endpoint: ${receiver.url}\n`));
    alpha.enqueue(CHAT, rateLimited({ retryAfter: "30" }));
    beta.enqueue(CHAT, { kind: "json", body: chatCompletion("hi", "beta-m") });
    const response = await postChat(
      gateway,
      { model: "m", messages: [{ role: "user", content: PROMPT }] },
      { traceparent: TRACEPARENT, tracestate: TRACESTATE },
    );
    assert.equal(response.status, 200, response.text);
    assert.equal(response.headers.traceparent, undefined, "no standard response header carries it");
    assert.equal(response.headers.traceresponse, undefined);

    const sent = [...chatRequests(alpha), ...chatRequests(beta)].map((request) => ({
      traceparent: headerOf(request.headers.traceparent),
      tracestate: headerOf(request.headers.tracestate),
    }));
    assert.equal(sent.length, 2);
    const spanIds = sent.map(({ traceparent }) => {
      // One header, the gateway's: the provider's configured `Traceparent` is replaced, not sent beside it.
      const match = TRACEPARENT_FORMAT.exec(traceparent ?? "");
      assert.ok(match !== null, `not one valid traceparent: ${traceparent}`);
      assert.equal(match[1], CALLER_TRACE);
      return match[2] as string;
    });
    assert.notEqual(spanIds[0], spanIds[1], "two attempts, two span ids");
    assert.ok(!spanIds.includes(CALLER_SPAN), "an attempt's span is the gateway's, not the caller's");
    assert.deepEqual(
      sent.map((entry) => entry.tracestate),
      [TRACESTATE, TRACESTATE],
    );

    const record = await recordOf(gateway, response.headers["x-request-id"] ?? "");
    assert.equal(record.trace?.traceId, CALLER_TRACE);
    assert.equal(record.trace?.parentSpanId, CALLER_SPAN);
    assert.equal(record.trace?.isSampled, true);
    assert.deepEqual(
      record.attempts.map((attempt) => attempt.spanId),
      spanIds,
    );

    await waitUntil(() => receiver.spans().length >= 3, "the spans to be exported", 5_000);
    const spans = receiver.spans();
    const root = spans.find((span) => span.spanId === record.trace?.spanId);
    assert.ok(root !== undefined);
    assert.equal(root.traceId, CALLER_TRACE);
    assert.equal(root.parentSpanId, CALLER_SPAN, "the gateway's span is the caller's span's child");
    const children = spans.filter((span) => span.parentSpanId === root.spanId);
    assert.deepEqual(
      children.map((span) => [span.traceId, span.spanId]),
      spanIds.map((id) => [CALLER_TRACE, id]),
    );
    const exported = receiver.bodies.join("\n");
    for (const secret of [PROMPT, "sk-alpha-secret-key-0123456789", "sk-beta-secret-key-0123456789", "congo="]) {
      assert.ok(!exported.includes(secret), `an export holds ${secret}`);
    }
  });

  test("export off: an invalid traceparent (or none) sends no trace header upstream and leaves no trace; a valid one is continued with its flag", async (t) => {
    const alpha = await useMock(t);
    alpha.setDefault(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    const gateway = await useGateway(
      t,
      `providers:\n  - name: alpha\n    base_url: ${alpha.baseUrl}\n    api_key: sk-alpha\n    models:\n      m: { id: alpha-m }\n`,
    );
    const invalid = [
      `ff-${CALLER_TRACE}-${CALLER_SPAN}-01`,
      `00-${"0".repeat(32)}-${CALLER_SPAN}-01`,
      `00-${CALLER_TRACE}-${"0".repeat(16)}-01`,
      `00-${CALLER_TRACE.toUpperCase()}-${CALLER_SPAN}-01`,
      `00-${CALLER_TRACE}-${CALLER_SPAN}-01-extra`,
      `00-${CALLER_TRACE.slice(1)}-${CALLER_SPAN}-01`,
    ];
    for (const traceparent of [...invalid, undefined]) {
      const headers: Record<string, string> = traceparent === undefined ? {} : { traceparent, tracestate: TRACESTATE };
      const response = await postChat(gateway, { model: "m" }, headers);
      assert.equal(response.status, 200);
      const record = await recordOf(gateway, response.headers["x-request-id"] ?? "");
      assert.equal(record.trace, undefined, `a trace for ${traceparent}`);
    }
    for (const request of chatRequests(alpha)) {
      assert.equal(request.headers.traceparent, undefined);
      assert.equal(request.headers.tracestate, undefined);
    }

    const unsampled = `00-${CALLER_TRACE}-${CALLER_SPAN}-00`;
    const response = await postChat(gateway, { model: "m" }, { traceparent: unsampled });
    assert.equal(response.status, 200);
    const last = chatRequests(alpha).at(-1);
    const match = TRACEPARENT_FORMAT.exec(headerOf(last?.headers.traceparent) ?? "");
    assert.ok(match !== null);
    assert.equal(match[1], CALLER_TRACE);
    assert.match(headerOf(last?.headers.traceparent) ?? "", /-00$/, "the caller's unsampled flag is sent on");
    assert.equal(last?.headers.tracestate, undefined, "none was sent, none is made up");
    // The next request, without a header, gets nothing of this one's trace.
    await postChat(gateway, { model: "m" });
    assert.equal(chatRequests(alpha).at(-1)?.headers.traceparent, undefined);
  });

  test("hostile tracestate (too many members, too long, a tab or a latin-1 byte in a value, a key twice) is dropped, the request served and continued", async (t) => {
    // Coverage, not a bug: nothing of an invalid list reaches an upstream header, and none makes undici throw (a 500).
    const alpha = await useMock(t);
    alpha.setDefault(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    const gateway = await useGateway(
      t,
      `providers:\n  - name: alpha\n    base_url: ${alpha.baseUrl}\n    api_key: sk-alpha\n    models:\n      m: { id: alpha-m }\n`,
    );
    const hostile = [
      Array.from({ length: 1000 }, (_, index) => `k${index}=v`).join(","),
      `congo=${"x".repeat(600)}`,
      "congo=a\tb",
      "congo=caf\u00e9",
      "congo=a,congo=b",
      "Congo=a",
    ];
    for (const tracestate of hostile) {
      const response = await postChat(gateway, { model: "m" }, { traceparent: `\t${TRACEPARENT} `, tracestate });
      assert.equal(response.status, 200, response.text);
      const sent = chatRequests(alpha).at(-1)?.headers;
      assert.equal(TRACEPARENT_FORMAT.exec(headerOf(sent?.traceparent) ?? "")?.[1], CALLER_TRACE, "continued");
      assert.equal(sent?.tracestate, undefined, JSON.stringify(tracestate.slice(0, 40)));
    }
  });

  test("the openai SDK with a traceparent header: the upstream gets the caller's trace", async (t) => {
    const alpha = await useMock(t);
    alpha.setDefault(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    const gateway = await useGateway(
      t,
      `providers:\n  - name: alpha\n    base_url: ${alpha.baseUrl}\n    api_key: sk-alpha\n    models:\n      m: { id: alpha-m }\n`,
    );
    const client = openAiClient(gateway);
    const answer = await client.chat.completions.create(
      { model: "m", messages: [{ role: "user", content: "hi" }] },
      { headers: { traceparent: TRACEPARENT } },
    );
    assert.equal(answer.choices[0]?.message.content, "hi");
    const match = TRACEPARENT_FORMAT.exec(headerOf(chatRequests(alpha)[0]?.headers.traceparent) ?? "");
    assert.equal(match?.[1], CALLER_TRACE);
    assert.notEqual(match?.[2], CALLER_SPAN);
  });

  test("the Responses and Messages doors continue the trace too; a refused body's record keeps it", async (t) => {
    const alpha = await useMock(t);
    alpha.setDefault(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    const gateway = await useGateway(
      t,
      `providers:\n  - name: alpha\n    base_url: ${alpha.baseUrl}\n    api_key: sk-alpha\n    models:\n      m: { id: alpha-m }\n`,
    );
    const headers = { traceparent: TRACEPARENT };
    const responses = await send(gateway, "POST", "/v1/responses", { body: { model: "m", input: "hi" }, headers });
    assert.equal(responses.status, 200, responses.text);
    const messages = await send(gateway, "POST", "/v1/messages", {
      body: { model: "m", max_tokens: 16, messages: [{ role: "user", content: "hi" }] },
      headers,
    });
    assert.equal(messages.status, 200, messages.text);
    const sent = chatRequests(alpha).map((request) =>
      TRACEPARENT_FORMAT.exec(headerOf(request.headers.traceparent) ?? ""),
    );
    assert.deepEqual(
      sent.map((match) => match?.[1]),
      [CALLER_TRACE, CALLER_TRACE],
    );
    for (const response of [responses, messages]) {
      const record = await recordOf(gateway, response.headers["x-request-id"] ?? "");
      assert.equal(record.trace?.traceId, CALLER_TRACE);
    }
    const refused = await postChat(gateway, { model: "m", messages: 5 }, headers);
    assert.equal(refused.status, 400);
    const record = await recordOf(gateway, refused.headers["x-request-id"] ?? "");
    assert.equal(record.trace?.parentSpanId, CALLER_SPAN);
    // Refused while its body was read (not JSON): recorded by the error handler, with the trace too.
    const unreadable = await send(gateway, "POST", "/v1/chat/completions", {
      body: "{not json",
      headers: { ...headers, "content-type": "application/json" },
    });
    assert.equal(unreadable.status, 400);
    assert.equal((await recordOf(gateway, unreadable.headers["x-request-id"] ?? "")).trace?.traceId, CALLER_TRACE);
  });

  test("a stream cut mid-answer and continued elsewhere: the continuation is sent the trace under a span id of its own", async (t) => {
    const scene = await startTwoProviders(t);
    const words = Array.from({ length: 12 }, (_, index) => (index === 0 ? "Word0" : ` word${index}`));
    // The role chunk and 8 words, no finish: then the connection drops.
    const firstPart = chatStream(words.slice(0, 8), MODEL, { id: "chatcmpl-a" }).slice(0, 9);
    scene.primary.enqueue(CHAT_ROUTE, { kind: "sse", events: firstPart, end: "destroy" });
    scene.backup.enqueue(CHAT_ROUTE, { kind: "sse", events: chatStream(words.slice(8), MODEL, { id: "chatcmpl-b" }) });
    const { data: stream, response } = await scene.client.chat.completions
      .create(
        { model: MODEL, messages: [{ role: "user", content: "count" }], stream: true },
        { headers: { traceparent: TRACEPARENT } },
      )
      .withResponse();
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    assert.equal(text, words.join(""));
    const sent = [scene.primary.requests[0], scene.backup.requests[0]].map((request) =>
      TRACEPARENT_FORMAT.exec(headerOf(request?.headers.traceparent) ?? ""),
    );
    assert.deepEqual(
      sent.map((match) => match?.[1]),
      [CALLER_TRACE, CALLER_TRACE],
    );
    assert.notEqual(sent[0]?.[2], sent[1]?.[2]);
    const record = await recordOf(scene.gateway, response.headers.get("x-request-id") ?? "");
    assert.deepEqual(
      record.attempts.map((attempt) => [attempt.role, attempt.spanId]),
      [
        ["primary", sent[0]?.[2]],
        ["continuation", sent[1]?.[2]],
      ],
    );
  });

  test("export on, parent-based by default: a caller's unsampled trace is sent on as such and not exported", async (t) => {
    const receiver = await otlpCollector(t);
    const alpha = await useMock(t);
    alpha.setDefault(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    const gateway = await useGateway(
      t,
      `providers:\n  - name: alpha\n    base_url: ${alpha.baseUrl}\n    api_key: sk-alpha\n    models:\n      m: { id: alpha-m }\n` +
        `traces:\n  otlp_endpoint: ${receiver.url}\n`,
    );
    const unsampledTrace = "5bf92f3577b34da6a3ce929d0e0e4736";
    const unsampled = await postChat(
      gateway,
      { model: "m" },
      { traceparent: `00-${unsampledTrace}-${CALLER_SPAN}-00` },
    );
    const sampled = await postChat(gateway, { model: "m" }, { traceparent: TRACEPARENT });
    assert.deepEqual([unsampled.status, sampled.status], [200, 200]);
    assert.match(
      headerOf(chatRequests(alpha)[0]?.headers.traceparent) ?? "",
      new RegExp(`^00-${unsampledTrace}-.*-00$`),
    );
    assert.match(headerOf(chatRequests(alpha)[1]?.headers.traceparent) ?? "", new RegExp(`^00-${CALLER_TRACE}-.*-01$`));
    await waitUntil(() => receiver.spans().length >= 2, "the sampled request's spans", 5_000);
    // Both records are final before the sampled one's spans were sent (published in order): nothing else comes.
    await gateway.close();
    assert.deepEqual([...new Set(receiver.spans().map((span) => span.traceId))], [CALLER_TRACE]);
  });

  test("a collector that never answers holds no request: spans past max_queue_spans are dropped and counted", async (t) => {
    const receiver = await otlpCollector(t, { hang: true });
    const alpha = await useMock(t);
    alpha.setDefault(CHAT, { kind: "json", body: chatCompletion("hi", "alpha-m") });
    const gateway = await useGateway(
      t,
      `providers:\n  - name: alpha\n    base_url: ${alpha.baseUrl}\n    api_key: sk-alpha\n    models:\n      m: { id: alpha-m }\n` +
        `traces:\n  otlp_endpoint: ${receiver.url}\n  max_queue_spans: 4\n  export_timeout_ms: 2000\n`,
    );
    // Without a traceparent: with an export on, the gateway starts a trace of its own and sends it upstream.
    const responses = [];
    for (let index = 0; index < 12; index++) responses.push(await postChat(gateway, { model: "m" }));
    assert.deepEqual(
      responses.map((response) => response.status),
      Array(12).fill(200),
    );
    for (const request of chatRequests(alpha))
      assert.match(headerOf(request.headers.traceparent) ?? "", TRACEPARENT_FORMAT);
    let dropped = 0;
    for (let tries = 0; tries < 100 && dropped === 0; tries++) {
      const metrics = await send(gateway, "GET", "/metrics");
      const line = /llm_gateway_trace_spans_dropped_total\{reason="queue_full"\} (\d+)/.exec(metrics.text);
      dropped = Number(line?.[1] ?? 0);
      if (dropped === 0) await new Promise((resolveWait) => setTimeout(resolveWait, 50));
    }
    assert.ok(dropped > 0, "the queue's bound dropped spans, counted");
  });
});
