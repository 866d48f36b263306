// Metrics, the request log and the dashboard's data over real sockets: scripted traffic through the real gateway
// to two mock upstreams, then /metrics (parsed as Prometheus text) and /v1/gateway/requests show it.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { errorOf, openAiClient, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, chatStream, rateLimited } from "../helpers/mock-upstream.ts";
import { parsePrometheusText, samplesOf, sumOf } from "../helpers/prometheus-text.ts";

const CHAT = "POST /v1/chat/completions";
const CLIENT_KEY = "client-key-1";

async function scene(t: import("node:test").TestContext, extra = "") {
  const alpha = await useMock(t);
  const beta = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
  api_keys: [${CLIENT_KEY}]
providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha-secret-key
    retries: 0
    models:
      m: { id: alpha-m, priority: 10 }
  - name: beta
    base_url: ${beta.baseUrl}
    api_key: sk-beta-secret-key
    retries: 0
    models:
      m: { id: beta-m, priority: 1 }
routing:
  max_wait_for_better_ms: 0
${extra}`,
  );
  const auth = { authorization: `Bearer ${CLIENT_KEY}` };
  return { alpha, beta, gateway, auth };
}

describe("observability over real traffic", () => {
  test("a failover shows in /metrics and in the request log with its attempts", async (t) => {
    const { alpha, beta, gateway, auth } = await scene(t);
    alpha.enqueue(CHAT, rateLimited({ retryAfter: "30" }));
    beta.enqueue(CHAT, { kind: "json", body: chatCompletion("hello", "beta-m") });
    const answered = await postChat(gateway, { model: "m" }, auth);
    assert.equal(answered.status, 200, answered.text);
    const requestId = answered.headers["x-request-id"];
    assert.ok(requestId !== undefined);
    // A made-up model: 404, and its name must not become a label value.
    const unknown = await postChat(gateway, { model: "made-up-model-xyz" }, auth);
    assert.equal(unknown.status, 404);

    const metricsResponse = await send(gateway, "GET", "/metrics", { headers: auth });
    assert.equal(metricsResponse.status, 200);
    assert.match(metricsResponse.headers["content-type"] ?? "", /^text\/plain/);
    const metrics = parsePrometheusText(metricsResponse.text);
    assert.equal(
      sumOf(metrics, "llm_gateway_requests_total", { model: "m", provider: "beta", status_class: "2xx" }),
      1,
    );
    assert.equal(sumOf(metrics, "llm_gateway_failovers_total", { provider: "alpha", outcome: "rate_limited" }), 1);
    assert.equal(sumOf(metrics, "llm_gateway_attempts_total", { provider: "alpha", outcome: "rate_limited" }), 1);
    assert.equal(sumOf(metrics, "llm_gateway_cooldowns_active", { cause: "rate_limited" }), 1);
    assert.ok(sumOf(metrics, "llm_gateway_request_duration_seconds_count", { provider: "beta" }) >= 1);
    assert.ok(!metricsResponse.text.includes("made-up-model-xyz"), "a client's model name became a label value");
    for (const sample of metrics.samples) assert.match(sample.name, /^llm_gateway_/);
    assert.ok(samplesOf(metrics, "llm_gateway_process_resident_memory_bytes").length > 0);

    const listed = await send(gateway, "GET", "/v1/gateway/requests?model=m&limit=10", { headers: auth });
    assert.equal(listed.status, 200, listed.text);
    const records = (listed.json as { data: { id: string; attempts: { provider: string; outcome: string }[] }[] }).data;
    assert.equal(records[0]?.id, requestId);
    assert.deepEqual(
      records[0]?.attempts.map((attempt) => `${attempt.provider}:${attempt.outcome}`),
      ["alpha:rate_limited", "beta:success"],
    );
    const byStatus = await send(gateway, "GET", "/v1/gateway/requests?status=200&provider=beta", { headers: auth });
    assert.deepEqual(
      (byStatus.json as { data: { id: string }[] }).data.map((found) => found.id),
      [requestId],
    );
    const none = await send(gateway, "GET", "/v1/gateway/requests?status=500", { headers: auth });
    assert.deepEqual((none.json as { data: unknown[] }).data, []);
    const one = await send(gateway, "GET", `/v1/gateway/requests/${requestId}`, { headers: auth });
    assert.equal(one.status, 200);
    assert.equal((one.json as { servedBy: { provider: string } }).servedBy.provider, "beta");
    assert.ok(!one.text.includes("sk-alpha-secret-key") && !one.text.includes("sk-beta-secret-key"));
  });

  test("an answer without usage: /metrics, the request log and the dashboard feed agree on its estimate", async (t) => {
    const { alpha, gateway, auth } = await scene(t);
    const { usage: _none, ...withoutUsage } = chatCompletion("Hello there, friend!", "alpha-m");
    alpha.enqueue(CHAT, { kind: "json", body: withoutUsage });
    const answered = await postChat(gateway, { model: "m" }, auth);
    assert.equal(answered.status, 200, answered.text);
    const requestId = answered.headers["x-request-id"];
    const told = (answered.json as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
    assert.ok(told.prompt_tokens > 0 && told.completion_tokens > 0);

    const one = await send(gateway, "GET", `/v1/gateway/requests/${requestId}`, { headers: auth });
    const logged = one.json as RequestRecord;
    assert.equal(logged.isUsageEstimated, true);
    assert.deepEqual([logged.tokensIn, logged.tokensOut], [told.prompt_tokens, told.completion_tokens]);

    const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics", { headers: auth })).text);
    const estimated = { provider: "alpha", source: "estimated" };
    assert.equal(sumOf(metrics, "llm_gateway_tokens_total", { ...estimated, direction: "in" }), told.prompt_tokens);
    assert.equal(
      sumOf(metrics, "llm_gateway_tokens_total", { ...estimated, direction: "out" }),
      told.completion_tokens,
    );
    assert.equal(sumOf(metrics, "llm_gateway_tokens_total", { source: "reported" }), 0);
    assert.equal(
      sumOf(metrics, "llm_gateway_client_tokens_total", { source: "estimated", direction: "out" }),
      told.completion_tokens,
    );

    const state = await send(gateway, "GET", "/dashboard/api/state", { headers: auth });
    const feed = (state.json as { feed: { id: string; tokensOut: number; isUsageEstimated: boolean }[] }).feed;
    const entry = feed.find((line) => line.id === requestId);
    assert.equal(entry?.isUsageEstimated, true);
    assert.equal(entry?.tokensOut, told.completion_tokens);
  });

  test("protected like /stats; bad query values are 400s in the OpenAI error shape", async (t) => {
    const { gateway, auth } = await scene(t);
    for (const path of ["/metrics", "/v1/gateway/requests", "/v1/gateway/requests/x", "/dashboard/api/state"]) {
      const response = await send(gateway, "GET", path);
      assert.equal(response.status, 401, path);
      assert.equal(errorOf(response).code, "invalid_api_key");
    }
    const page = await send(gateway, "GET", "/dashboard");
    assert.equal(page.status, 200, "the page itself holds no data");
    assert.ok(Buffer.byteLength(page.text) < 150 * 1024, `the dashboard is ${Buffer.byteLength(page.text)} bytes`);
    assert.doesNotMatch(page.text, /<script[^>]+src=|<link[^>]+href=|@import|url\(/, "nothing loaded from elsewhere");
    assert.match(page.headers["content-type"] ?? "", /^text\/html/);
    const redirect = await send(gateway, "GET", "/ui");
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.location, "/dashboard");
    const state = await send(gateway, "GET", "/dashboard/api/state", { headers: auth });
    assert.equal(state.status, 200);
    assert.equal((state.json as { deployments: unknown[] }).deployments.length, 2);

    const bad = await send(gateway, "GET", "/v1/gateway/requests?status=teapot", { headers: auth });
    assert.equal(bad.status, 400);
    const error = errorOf(bad);
    assert.equal(error.param, "status");
    assert.equal(error.code, "invalid_value");
    assert.equal(
      errorOf(await send(gateway, "GET", "/v1/gateway/requests?since=soon", { headers: auth })).param,
      "since",
    );
    const missing = await send(gateway, "GET", "/v1/gateway/requests/no-such-id", { headers: auth });
    assert.equal(missing.status, 404);
    assert.equal(errorOf(missing).code, "request_not_found");
  });

  test("with admin keys the dashboard data needs an admin key", async (t) => {
    const auth = { authorization: `Bearer ${CLIENT_KEY}` };
    const alpha = await useMock(t);
    const admin = await useGateway(
      t,
      `server:
  port: 0
  host: 127.0.0.1
  api_keys: [${CLIENT_KEY}]
  admin_keys: [admin-key-1]
providers:
  - name: alpha
    base_url: ${alpha.baseUrl}
    api_key: sk-alpha
    models:
      m: {}
`,
    );
    assert.equal((await send(admin, "GET", "/dashboard/api/state", { headers: auth })).status, 401);
    const ok = await send(admin, "GET", "/dashboard/api/state", { headers: { authorization: "Bearer admin-key-1" } });
    assert.equal(ok.status, 200);
  });
});

describe("observability of the request pipeline's records", () => {
  test("a failover, a 429 cooldown, streams and a continuation move the metrics; the request log holds their routes; retention drops the oldest", async (t) => {
    const { alpha, beta, gateway, auth } = await scene(t, "request_log:\n  max_entries: 4\n");
    const words = ["Zero", " one", " two", " three"];
    // 1. A stream that alpha cuts after three words: beta continues it.
    alpha.enqueue(CHAT, { kind: "sse", events: chatStream(words.slice(0, 3), "alpha-m").slice(0, 4), end: "destroy" });
    beta.enqueue(CHAT, { kind: "sse", events: chatStream([" three"], "beta-m") });
    const continued = await postChat(gateway, { model: "m", stream: true }, auth);
    assert.equal(continued.status, 200);
    assert.match(continued.text, /three/);
    // 2. A stream alpha answers whole, with usage.
    alpha.enqueue(CHAT, {
      kind: "sse",
      events: chatStream(words, "alpha-m", { usage: { prompt_tokens: 11, completion_tokens: 4 } }),
    });
    const streamed = await postChat(gateway, { model: "m", stream: true }, auth);
    assert.equal(streamed.status, 200);
    // 3. JSON: alpha answers 429 (cooling 30 s), beta answers.
    alpha.enqueue(CHAT, rateLimited({ retryAfter: "30" }));
    beta.enqueue(CHAT, { kind: "json", body: chatCompletion("hello", "beta-m") });
    const failedOver = await postChat(gateway, { model: "m" }, auth);
    assert.equal(failedOver.status, 200);
    // 4. While alpha cools, the route skips it: beta answers at once (a 429 avoided).
    beta.enqueue(CHAT, { kind: "json", body: chatCompletion("again", "beta-m") });
    const avoided = await postChat(gateway, { model: "m" }, auth);
    assert.equal(avoided.status, 200);
    assert.equal(avoided.headers["x-gateway-provider"], "beta");
    // 5. A made-up model: refused before routing, but recorded all the same.
    const madeUp = await postChat(gateway, { model: "not-a-model-at-all" }, auth);
    assert.equal(madeUp.status, 404);

    const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics", { headers: auth })).text);
    assert.equal(sumOf(metrics, "llm_gateway_requests_total", { model: "m", status_class: "2xx" }), 4);
    assert.equal(sumOf(metrics, "llm_gateway_requests_total", { provider: "alpha", upstream_model: "alpha-m" }), 2);
    assert.equal(sumOf(metrics, "llm_gateway_failovers_total", { provider: "alpha", outcome: "rate_limited" }), 1);
    assert.equal(sumOf(metrics, "llm_gateway_stream_continuations_total", { provider: "beta" }), 1);
    assert.equal(sumOf(metrics, "llm_gateway_attempts_total", { role: "continuation", provider: "beta" }), 1);
    assert.equal(sumOf(metrics, "llm_gateway_attempts_total", { provider: "alpha", outcome: "stream_cut" }), 1);
    assert.equal(sumOf(metrics, "llm_gateway_cooldowns_active", { cause: "rate_limited" }), 1);
    assert.ok(sumOf(metrics, "llm_gateway_route_skips_total", { cause: "cooldown" }) >= 1);
    assert.equal(sumOf(metrics, "llm_gateway_time_to_first_token_seconds_count", { endpoint: "chat" }), 2);
    assert.ok(sumOf(metrics, "llm_gateway_tokens_total", { direction: "out", provider: "alpha" }) >= 4);
    assert.ok(sumOf(metrics, "llm_gateway_overhead_seconds_count") >= 4);
    const asked = new Set(samplesOf(metrics, "llm_gateway_requests_total").map((sample) => sample.labels.model));
    assert.ok(!asked.has("not-a-model-at-all"));
    assert.equal(sumOf(metrics, "llm_gateway_requests_total", { model: "other", status_class: "4xx" }), 1);

    const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=100", { headers: auth });
    const records = (listed.json as { data: RequestRecord[] }).data;
    // max_entries 4: four routed requests and one for an unknown model (refused before routing, it leaves a
    // record too: 404, no candidates, no attempts); the oldest, the continued stream, is gone.
    assert.equal(records.length, 4, records.map((found) => found.id).join(", "));
    assert.equal(records[0]?.id, madeUp.headers["x-request-id"]);
    assert.deepEqual(
      [records[0]?.status, records[0]?.errorCode, records[0]?.requestedModel, records[0]?.attempts.length],
      [404, "model_not_found", "not-a-model-at-all", 0],
    );
    assert.equal(records[1]?.id, avoided.headers["x-request-id"]);
    assert.ok(records[1]?.skips.some((skip) => skip.provider === "alpha" && skip.cause === "cooldown"));
    assert.equal(records[2]?.id, failedOver.headers["x-request-id"]);
    assert.equal(records[3]?.id, streamed.headers["x-request-id"]);
    assert.equal(records[3]?.isStream, true);
    assert.equal(records[3]?.tokensOut, 4);
    const gone = await send(gateway, "GET", `/v1/gateway/requests/${continued.headers["x-request-id"]}`, {
      headers: auth,
    });
    assert.equal(gone.status, 404, "dropped by retention");
    // The dashboard's own memory still has it, with its continuation.
    const route = await send(gateway, "GET", `/dashboard/api/requests/${continued.headers["x-request-id"]}`, {
      headers: auth,
    });
    assert.equal(route.status, 200);
    const continuedRecord = route.json as RequestRecord;
    assert.equal(continuedRecord.continuations[0]?.provider, "beta");
    assert.deepEqual(
      continuedRecord.candidates.map((candidate) => candidate.provider),
      ["alpha", "beta"],
    );
    const failedOverRecord = (
      await send(gateway, "GET", `/v1/gateway/requests/${failedOver.headers["x-request-id"]}`, { headers: auth })
    ).json as RequestRecord;
    assert.deepEqual(
      failedOverRecord.attempts.map((attempt) => `${attempt.provider}:${attempt.outcome}:${attempt.status}`),
      ["alpha:rate_limited:429", "beta:success:200"],
    );
  });
});

describe("client protocols in the metrics", () => {
  test("a request on /v1/messages counts under protocol anthropic-messages, one on /v1/chat/completions under openai-chat", async (t) => {
    const { alpha, gateway, auth } = await scene(t);
    alpha.enqueue(CHAT, { kind: "json", body: chatCompletion("one", "alpha-m") });
    alpha.enqueue(CHAT, { kind: "json", body: chatCompletion("two", "alpha-m") });
    const messages = await send(gateway, "POST", "/v1/messages", {
      headers: auth,
      body: { model: "m", max_tokens: 16, messages: [{ role: "user", content: "hi" }] },
    });
    assert.equal(messages.status, 200, messages.text);
    assert.equal((await postChat(gateway, { model: "m" }, auth)).status, 200);
    const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics", { headers: auth })).text);
    assert.equal(sumOf(metrics, "llm_gateway_requests_total", { protocol: "anthropic-messages", model: "m" }), 1);
    assert.equal(sumOf(metrics, "llm_gateway_requests_total", { protocol: "openai-chat", model: "m" }), 1);
  });
});

describe("endpoints in the metrics and the request log", () => {
  test("a request through each front door is recorded and counted under its own endpoint, served by the chat pipeline", async (t) => {
    const { alpha, gateway, auth } = await scene(t);
    for (const text of ["via responses", "via messages", "via chat"]) {
      alpha.enqueue(CHAT, { kind: "json", body: chatCompletion(text, "alpha-m") });
    }
    const response = await openAiClient(gateway, CLIENT_KEY).responses.create({ model: "m", input: "hi" });
    assert.equal(response.output_text, "via responses");
    const anthropic = new Anthropic({ baseURL: gateway.url, apiKey: CLIENT_KEY, maxRetries: 0 });
    const message = await anthropic.messages.create({
      model: "m",
      max_tokens: 16,
      messages: [{ role: "user", content: "hi" }],
    });
    const [block] = message.content;
    assert.equal(block?.type === "text" ? block.text : undefined, "via messages");
    assert.equal((await postChat(gateway, { model: "m" }, auth)).status, 200);
    // All three went to the upstream's chat completions route.
    assert.equal(alpha.requests.filter((request) => request.path === "/v1/chat/completions").length, 3);

    const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics", { headers: auth })).text);
    for (const [endpoint, protocol] of [
      ["responses", "openai-responses"],
      ["messages", "anthropic-messages"],
      ["chat", "openai-chat"],
    ] as const) {
      assert.equal(sumOf(metrics, "llm_gateway_requests_total", { endpoint }), 1, endpoint);
      assert.equal(sumOf(metrics, "llm_gateway_requests_total", { endpoint, protocol, provider: "alpha" }), 1);
      assert.equal(sumOf(metrics, "llm_gateway_request_duration_seconds_count", { endpoint }), 1, endpoint);
    }
    const log = (await send(gateway, "GET", "/v1/gateway/requests", { headers: auth })).json as {
      data: RequestRecord[];
    };
    assert.deepEqual(log.data.map((record) => `${record.endpoint}:${record.clientProtocol}`).sort(), [
      "chat:openai-chat",
      "messages:anthropic-messages",
      "responses:openai-responses",
    ]);
  });
});

describe("message content in the request log", () => {
  for (const isKept of [false, true]) {
    test(`log.content: ${isKept}`, async (t) => {
      const { alpha, gateway, auth } = await scene(t, `log:\n  content: ${isKept}\n`);
      // Choice 0 sent after an entry that is not one: the text logged is the answer's (chat-choice.ts), as sent.
      const completion = chatCompletion("the secret answer", "alpha-m");
      alpha.enqueue(CHAT, { kind: "json", body: { ...completion, choices: [null, ...completion.choices] } });
      const answered = await postChat(
        gateway,
        { model: "m", messages: [{ role: "user", content: "a private question" }] },
        auth,
      );
      assert.equal(answered.status, 200);
      const one = await send(gateway, "GET", `/v1/gateway/requests/${answered.headers["x-request-id"]}`, {
        headers: auth,
      });
      assert.equal(one.status, 200);
      alpha.enqueue(CHAT, { kind: "sse", events: chatStream(["streamed", " secret"], "alpha-m") });
      const streamed = await postChat(gateway, { model: "m", stream: true }, auth);
      assert.equal(streamed.status, 200);
      const streamedRecord = await send(gateway, "GET", `/v1/gateway/requests/${streamed.headers["x-request-id"]}`, {
        headers: auth,
      });
      if (isKept) {
        const content = (one.json as RequestRecord).content;
        assert.deepEqual(content?.request, [{ role: "user", content: "a private question" }]);
        assert.equal(content?.responseText, "the secret answer");
        assert.equal((streamedRecord.json as RequestRecord).content?.responseText, "streamed secret");
      } else {
        assert.ok(!one.text.includes("a private question"), one.text);
        assert.ok(!one.text.includes("the secret answer"), one.text);
        assert.ok(!streamedRecord.text.includes("streamed secret"), streamedRecord.text);
      }
    });
  }
});

describe("request_log.file", () => {
  test("every finished request is appended as one JSON line, without content or keys", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "request-log-file-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "logs", "requests.jsonl");
    const { alpha, gateway, auth } = await scene(t, `request_log:\n  file: ${JSON.stringify(file)}\n`);
    alpha.enqueue(CHAT, { kind: "json", body: chatCompletion("one", "alpha-m") });
    alpha.enqueue(CHAT, { kind: "json", status: 401, body: { error: { message: "bad key sk-alpha-secret-key" } } });
    const first = await postChat(gateway, { model: "m", messages: [{ role: "user", content: "private" }] }, auth);
    await postChat(gateway, { model: "m" }, auth);
    await gateway.close();
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    assert.equal(lines.length, 2);
    const records = lines.map((line) => JSON.parse(line) as RequestRecord);
    assert.equal(records[0]?.id, first.headers["x-request-id"]);
    assert.equal(records[1]?.attempts[0]?.outcome, "invalid_key");
    const text = lines.join("\n");
    assert.ok(!text.includes("sk-alpha-secret-key") && !text.includes("private"), text);
  });
});

describe("skips that are not 429s avoided", () => {
  test("an open circuit: its skips are labelled circuit_open and are no 429s avoided; it counts in cooldowns_active and the dashboard counts down to its probe", async (t) => {
    const { alpha, beta, gateway, auth } = await scene(
      t,
      "cooldowns:\n  failure_threshold: 3\n  circuit_first_probe_ms: 60000\n  circuit_open_ms: 60000\n",
    );
    // Three 500s in a row open alpha's circuit (each request fails over to beta).
    for (let index = 0; index < 3; index++) {
      alpha.enqueue(CHAT, { kind: "json", status: 500, body: { error: { message: "boom" } } });
      beta.enqueue(CHAT, { kind: "json", body: chatCompletion("hello", "beta-m") });
      assert.equal((await postChat(gateway, { model: "m" }, auth)).status, 200);
    }
    beta.enqueue(CHAT, { kind: "json", body: chatCompletion("hello", "beta-m") });
    const skipped = await postChat(gateway, { model: "m" }, auth);
    assert.equal(skipped.headers["x-gateway-provider"], "beta");
    assert.equal(alpha.requests.length, 3, "the open circuit kept alpha out of the route");

    const record = (
      await send(gateway, "GET", `/v1/gateway/requests/${skipped.headers["x-request-id"]}`, { headers: auth })
    ).json as RequestRecord;
    const skip = record.skips.find((found) => found.provider === "alpha");
    assert.deepEqual(
      [skip?.phase, skip?.cause, skip?.cooldownCause, skip?.isLimit],
      ["plan", "cooldown", "circuit_open", false],
    );

    const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics", { headers: auth })).text);
    assert.equal(sumOf(metrics, "llm_gateway_route_skips_total", { cause: "circuit_open" }), 1);
    assert.equal(sumOf(metrics, "llm_gateway_route_skips_total", { cause: "cooldown" }), 0);
    assert.equal(sumOf(metrics, "llm_gateway_cooldowns_active", { cause: "circuit_open" }), 1);
    const state = (await send(gateway, "GET", "/dashboard/api/state", { headers: auth })).json as {
      series: { rateLimitsAvoided: number }[];
      deployments: { deploymentKey: string; circuit: string; cooldown?: { cause: string; untilMs: number } }[];
    };
    // The dashboard counts down to the circuit's next probe (60 s after it opened).
    const alphaRow = state.deployments.find((row) => row.deploymentKey === "alpha/m");
    assert.equal(alphaRow?.circuit, "open");
    assert.equal(alphaRow?.cooldown?.cause, "circuit_open");
    assert.ok((alphaRow?.cooldown?.untilMs ?? 0) > Date.now() + 50_000, JSON.stringify(alphaRow?.cooldown));
    assert.equal(
      state.series.reduce((total, minute) => total + minute.rateLimitsAvoided, 0),
      0,
      "an open circuit is not a 429 avoided",
    );
  });

  test("a candidate cooling after a 429 is a 429 avoided", async (t) => {
    const { alpha, beta, gateway, auth } = await scene(t);
    alpha.enqueue(CHAT, rateLimited({ retryAfter: "30" }));
    beta.enqueue(
      CHAT,
      { kind: "json", body: chatCompletion("hello", "beta-m") },
      { kind: "json", body: chatCompletion("again", "beta-m") },
    );
    assert.equal((await postChat(gateway, { model: "m" }, auth)).status, 200);
    const avoided = await postChat(gateway, { model: "m" }, auth);
    const record = (
      await send(gateway, "GET", `/v1/gateway/requests/${avoided.headers["x-request-id"]}`, { headers: auth })
    ).json as RequestRecord;
    const skip = record.skips.find((found) => found.provider === "alpha");
    assert.deepEqual([skip?.cause, skip?.cooldownCause, skip?.isLimit], ["cooldown", "rate_limited", true]);
    const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics", { headers: auth })).text);
    assert.equal(sumOf(metrics, "llm_gateway_route_skips_total", { cause: "cooldown" }), 1);
    const state = (await send(gateway, "GET", "/dashboard/api/state", { headers: auth })).json as {
      series: { rateLimitsAvoided: number }[];
    };
    assert.equal(
      state.series.reduce((total, minute) => total + minute.rateLimitsAvoided, 0),
      1,
    );
  });
});
