// Requests the gateway refuses before planning (a bad body, an unknown model, no candidate that fits, a built-in
// tool on /v1/responses, a Messages request without `max_tokens`) still leave their one record: in the request
// log, in the metrics (status class 4xx) and in the dashboard's feed, with no candidates and no attempts, and
// without touching the books (/stats counters, health). An authentication failure leaves none, on purpose.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { CHAT_ROUTE, HELLO, send, useGateway, useMock } from "../helpers/e2e.ts";
import { chatCompletion } from "../helpers/mock-upstream.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";

const CLIENT_KEY = "client-key-1";
const AUTH = { authorization: `Bearer ${CLIENT_KEY}` };

interface Refusal {
  readonly name: string;
  readonly path: string;
  readonly body: unknown;
  readonly headers?: Record<string, string>;
  readonly status: number;
  /** The record's `errorCode` (the Messages door answers in Anthropic's shape, without a code). */
  readonly errorCode: string;
  readonly endpoint: string;
  readonly clientProtocol: string;
  readonly requestedModel: string;
  readonly isStream: boolean;
}

const REFUSALS: readonly Refusal[] = [
  {
    name: "a chat body without messages",
    path: "/v1/chat/completions",
    body: { model: "m", stream: true },
    status: 400,
    errorCode: "invalid_value",
    endpoint: "chat",
    clientProtocol: "openai-chat",
    requestedModel: "m",
    isStream: true,
  },
  {
    name: "a body that names no model",
    path: "/v1/embeddings",
    body: { input: "x" },
    status: 400,
    errorCode: "invalid_value",
    endpoint: "embeddings",
    clientProtocol: "openai-embeddings",
    requestedModel: "",
    isStream: false,
  },
  {
    name: "an unknown model",
    path: "/v1/chat/completions",
    body: { model: "made-up-model", messages: HELLO },
    status: 404,
    errorCode: "model_not_found",
    endpoint: "chat",
    clientProtocol: "openai-chat",
    requestedModel: "made-up-model",
    isStream: false,
  },
  {
    name: "a model with no candidate that fits (tools)",
    path: "/v1/chat/completions",
    body: { model: "m", messages: HELLO, tools: [{ type: "function", function: { name: "f", parameters: {} } }] },
    status: 400,
    errorCode: "no_capable_model",
    endpoint: "chat",
    clientProtocol: "openai-chat",
    requestedModel: "m",
    isStream: false,
  },
  {
    name: "a built-in tool on /v1/responses",
    path: "/v1/responses",
    body: { model: "m", input: "hi", tools: [{ type: "local_shell" }] },
    status: 400,
    errorCode: "unsupported_value",
    endpoint: "responses",
    clientProtocol: "openai-responses",
    requestedModel: "m",
    isStream: false,
  },
  {
    name: "a Messages request without max_tokens",
    path: "/v1/messages",
    body: { model: "m", stream: true, messages: [{ role: "user", content: "x" }] },
    headers: { "x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01" },
    status: 400,
    errorCode: "invalid_value",
    endpoint: "messages",
    clientProtocol: "anthropic-messages",
    requestedModel: "m",
    isStream: true,
  },
];

async function scene(t: import("node:test").TestContext) {
  const alpha = await useMock(t);
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
      m: { id: alpha-m, tools: false }
      e: { id: alpha-e, kind: embedding }
`,
  );
  return { alpha, gateway };
}

describe("requests refused before planning", () => {
  test("each leaves one record (request log, 4xx metrics, dashboard feed) and touches no books; an auth failure leaves none", async (t) => {
    const { alpha, gateway } = await scene(t);
    alpha.enqueue(CHAT_ROUTE, { kind: "json", body: chatCompletion("hello", "alpha-m") });
    const served = await send(gateway, "POST", "/v1/chat/completions", {
      body: { model: "m", messages: HELLO },
      headers: AUTH,
    });
    assert.equal(served.status, 200, served.text);
    const ids = new Map<string, Refusal>();
    for (const refusal of REFUSALS) {
      const response = await send(gateway, "POST", refusal.path, {
        body: refusal.body,
        headers: refusal.headers ?? AUTH,
      });
      assert.equal(response.status, refusal.status, `${refusal.name}: ${response.text}`);
      const id = response.headers["x-request-id"];
      assert.ok(id !== undefined, refusal.name);
      ids.set(id, refusal);
    }
    const unauthenticated = await send(gateway, "POST", "/v1/chat/completions", {
      body: { model: "m", messages: HELLO },
      headers: { authorization: "Bearer wrong-key" },
    });
    assert.equal(unauthenticated.status, 401);

    const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=100", { headers: AUTH });
    assert.equal(listed.status, 200, listed.text);
    const records = (listed.json as { data: RequestRecord[] }).data;
    assert.equal(records.length, REFUSALS.length + 1, records.map((record) => record.id).join(", "));
    assert.ok(!records.some((record) => record.id === unauthenticated.headers["x-request-id"]));
    for (const record of records) {
      const refusal = ids.get(record.id);
      if (refusal === undefined) {
        assert.equal(record.id, served.headers["x-request-id"]);
        continue;
      }
      assert.deepEqual(
        {
          status: record.status,
          errorCode: record.errorCode,
          outcome: record.outcome,
          endpoint: record.endpoint,
          clientProtocol: record.clientProtocol,
          requestedModel: record.requestedModel,
          isStream: record.isStream,
          candidates: record.candidates,
          attempts: record.attempts,
          servedBy: record.servedBy,
        },
        {
          status: refusal.status,
          errorCode: refusal.errorCode,
          outcome: "rejected",
          endpoint: refusal.endpoint,
          clientProtocol: refusal.clientProtocol,
          requestedModel: refusal.requestedModel,
          isStream: refusal.isStream,
          candidates: [],
          attempts: [],
          servedBy: undefined,
        },
        refusal.name,
      );
      assert.ok(record.durationMs >= 0 && record.startedAtMs > 0, refusal.name);
    }

    const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics", { headers: AUTH })).text);
    assert.equal(sumOf(metrics, "llm_gateway_requests_total", { status_class: "4xx" }), REFUSALS.length);
    assert.equal(
      sumOf(metrics, "llm_gateway_requests_total", { protocol: "anthropic-messages", status_class: "4xx" }),
      1,
    );
    assert.equal(sumOf(metrics, "llm_gateway_requests_total", { status_class: "2xx" }), 1);

    const state = await send(gateway, "GET", "/dashboard/api/state", { headers: AUTH });
    const feed = (state.json as { feed: { id: string; status: number }[] }).feed;
    for (const id of ids.keys())
      assert.ok(
        feed.some((entry) => entry.id === id),
        `the feed shows ${id}`,
      );

    // No book moved: the upstream saw the one served request, /stats counts one success and no failure.
    assert.equal(alpha.requests.length, 1);
    const stats = (await send(gateway, "GET", "/stats", { headers: AUTH })).json as {
      deployments: { provider: string; model: string; successes: number; failures: number }[];
    };
    const row = stats.deployments.find((deployment) => deployment.model === "m");
    assert.deepEqual([row?.successes, row?.failures], [1, 0]);
  });
});
