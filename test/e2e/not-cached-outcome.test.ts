// A `Cache-Control: only-if-cached` miss (504 `not_cached`, nothing sent upstream) is the client's choice, not a
// failure: its record has the outcome `not_cached` (src/errors/outcomes.ts), and metrics, the dashboard's charts and
// the request log count it apart from errors, so alerts on 5xx or error rates do not fire (docs/metrics.md). Before,
// it was a `rejected` record counted in status_class="5xx" and in the dashboard's errors.
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { chatRequests, errorOf, HELLO, postChat, send, useGateway, useMock } from "../helpers/e2e.ts";
import type { MockUpstream } from "../helpers/mock-upstream.ts";
import { parsePrometheusText, type Sample } from "../helpers/prometheus-text.ts";

/** One provider and the answer cache on: `only-if-cached` is honoured (a miss is a 504 `not_cached`). */
function cachedProviderYaml(mock: MockUpstream): string {
  return `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: { id: alpha-m }
cache:
  enabled: true
`;
}

function sumOf(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>>): number {
  return samples
    .filter(
      (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    )
    .reduce((total, sample) => total + sample.value, 0);
}

test("an only-if-cached miss is counted as not_cached, not as a 5xx or an error", async (t) => {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:
  api_keys:
    - plain-key
    - { key: team-key, name: team }
${cachedProviderYaml(mock)}`,
  );
  const auth = { authorization: "Bearer team-key" };
  // The gateway's views (an unnamed key): /metrics names every client, a named client may not read it.
  const viewer = { authorization: "Bearer plain-key" };
  const miss = await postChat(gateway, { model: "m", messages: HELLO }, { ...auth, "cache-control": "only-if-cached" });
  assert.equal(miss.status, 504, miss.text);
  assert.equal(errorOf(miss).code, "not_cached");
  assert.equal(chatRequests(mock).length, 0, "nothing went upstream");

  const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics", { headers: viewer })).text).samples;
  assert.equal(sumOf(metrics, "llm_gateway_requests_total", { status_class: "5xx" }), 0, "no 5xx counted");
  assert.equal(sumOf(metrics, "llm_gateway_requests_total", { status_class: "not_cached" }), 1);
  assert.equal(sumOf(metrics, "llm_gateway_client_requests_total", { client: "team", status_class: "5xx" }), 0);
  assert.equal(sumOf(metrics, "llm_gateway_client_requests_total", { client: "team", status_class: "not_cached" }), 1);
  assert.equal(sumOf(metrics, "llm_gateway_attempts_total", {}), 0, "no attempt");

  const listedResponse = await send(gateway, "GET", "/v1/gateway/requests?limit=10", { headers: viewer });
  assert.equal(listedResponse.status, 200, listedResponse.text);
  const listed = listedResponse.json as {
    data: { status: number; outcome: string; errorCode?: string }[];
  };
  assert.deepEqual(
    listed.data.map((record) => [record.status, record.outcome, record.errorCode]),
    [[504, "not_cached", "not_cached"]],
  );

  const state = (await send(gateway, "GET", "/dashboard/api/state", { headers: viewer })).json as {
    series: { requests: number; errors: number }[];
  };
  const requests = state.series.reduce((total, minute) => total + minute.requests, 0);
  const errors = state.series.reduce((total, minute) => total + minute.errors, 0);
  assert.equal(requests, 1, "the dashboard counts the request");
  assert.equal(errors, 0, "the dashboard does not count it as an error");

  // /stats: the cache's miss, and no failure on any deployment (nothing was attempted).
  const stats = (await send(gateway, "GET", "/stats", { headers: viewer })).json as {
    deployments: { failures: number }[];
    cache?: { misses?: number };
  };
  assert.equal(stats.cache?.misses, 1);
  assert.deepEqual(
    stats.deployments.map((deployment) => deployment.failures),
    [0],
  );

  // A real failure still counts as one: the upstream's 500 is a 5xx and an error.
  mock.setDefault("POST /v1/chat/completions", { kind: "json", status: 500, body: { error: { message: "boom" } } });
  const failed = await postChat(gateway, { model: "m", messages: HELLO }, auth);
  assert.ok(failed.status >= 500, failed.text);
  const after = parsePrometheusText((await send(gateway, "GET", "/metrics", { headers: viewer })).text).samples;
  assert.equal(sumOf(after, "llm_gateway_requests_total", { status_class: "5xx" }), 1);
});

test("an only-if-cached miss is logged as the client's answer (info), not as an internal error with a stack (error)", async (t) => {
  const mock = await useMock(t);
  const lines: { level: number; code?: string; msg?: string }[] = [];
  const gateway = await useGateway(t, cachedProviderYaml(mock), {
    logLevel: "info",
    logStream: new Writable({
      write(chunk, _encoding, callback) {
        for (const line of String(chunk)
          .split("\n")
          .filter((text) => text !== ""))
          lines.push(JSON.parse(line));
        callback();
      },
    }),
  });
  const miss = await postChat(gateway, { model: "m", messages: HELLO }, { "cache-control": "only-if-cached" });
  assert.equal(miss.status, 504, miss.text);
  assert.deepEqual(
    lines.filter((line) => line.level >= 50),
    [],
    "no error-level line: alerts on the error log must not fire for the client's choice",
  );
  assert.ok(lines.some((line) => line.level === 30 && line.code === "not_cached"));
});
