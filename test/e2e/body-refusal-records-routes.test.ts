// A refused body is recorded as a door's refusal only on a model door's own route (server/body-refusals.ts
// DOORS_BY_ROUTE). The routes under a door (a cancel, a token count), the Files and Batch routes and the
// Conversations routes record it as their own answer (server/route-records.ts: their family's endpoint, never the
// URL); /metrics, an unknown URL and a door's path with more after it refuse a junk body without a record, so random
// URLs cannot add to the request log or to requests_total. Coverage (review of 99fc3a9d); the route records since
// 2026-12-08 (before, the routes under and beside the doors left none either).
import assert from "node:assert/strict";
import { test } from "node:test";
import { send, useGateway, useMock } from "../helpers/e2e.ts";
import { parsePrometheusText, samplesOf } from "../helpers/prometheus-text.ts";

test("junk bodies on routes that are no model door: their family's record, or none; never a series per URL", async (t) => {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: { id: m }
request_log:
  enabled: true
`,
  );
  // Each with the endpoint its records have (api-routes.ts), or none.
  const families: [string, string][] = [
    ["/v1/responses/resp_1/cancel", "kept_responses"],
    ["/v1/responses/input_tokens", "input_tokens"],
    ["/v1/messages/count_tokens", "count_tokens"],
    ["/v1/files", "files"],
    ["/v1/batches", "batches"],
    ["/v1/conversations", "conversations"],
  ];
  const paths = [
    ...families.map(([path]) => path),
    "/metrics",
    "/v1/chat/completions/",
    "/v1/chat/completions/extra",
    `/v1/random-${Math.random().toString(36).slice(2)}`,
  ];
  for (const path of paths) {
    for (const [body, headers] of [
      ['{"model":"m",', { "content-type": "application/json" }],
      ['{"model":"m"}', { "content-type": "text/plain" }],
      ['{"model":"m"}', { "content-type": "application/json", "content-encoding": "snappy" }],
    ] as const) {
      const response = await send(gateway, "POST", path, { body, headers });
      assert.ok(response.status >= 400 && response.status < 500, `${path}: ${response.status} ${response.text}`);
    }
  }
  // A refusal on a door after them: recorded, so the listing below is not merely empty or late.
  const door = await send(gateway, "POST", "/v1/chat/completions", {
    body: '{"model":"m",',
    headers: { "content-type": "application/json" },
  });
  assert.equal(door.status, 400, door.text);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=100");
  const records = (listed.json as { data: { id: string; endpoint: string; outcome: string }[] }).data;
  const expected = [...families.flatMap(([, endpoint]) => [endpoint, endpoint, endpoint]), "chat"].sort();
  assert.deepEqual(records.map((record) => record.endpoint).sort(), expected);
  assert.ok(records.every((record) => record.outcome === "rejected"));
  assert.ok(records.some((record) => record.id === door.headers["x-request-id"] && record.endpoint === "chat"));
  const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics")).text);
  const series = samplesOf(metrics, "llm_gateway_requests_total").filter((sample) => sample.value > 0);
  assert.deepEqual(
    series.map((sample) => [sample.labels.endpoint, sample.value]).sort(),
    [...families.map(([, endpoint]): [string, number] => [endpoint, 3]), ["chat", 1]].sort(),
  );
});
