// Metrics, the request log and the dashboard's data over real sockets: scripted traffic through the real gateway
// to two mock upstreams, then /metrics (parsed as Prometheus text) and /v1/gateway/requests show it.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { errorOf, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion, rateLimited } from "../helpers/mock-upstream.ts";
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

  test("protected like /stats; bad query values are 400s in the OpenAI error shape", async (t) => {
    const { gateway, auth } = await scene(t);
    for (const path of ["/metrics", "/v1/gateway/requests", "/v1/gateway/requests/x", "/dashboard/api/state"]) {
      const response = await send(gateway, "GET", path);
      assert.equal(response.status, 401, path);
      assert.equal(errorOf(response).code, "invalid_api_key");
    }
    const page = await send(gateway, "GET", "/dashboard");
    assert.equal(page.status, 200, "the page itself holds no data");
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
