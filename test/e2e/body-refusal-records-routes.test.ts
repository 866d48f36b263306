// A refused body is recorded only on a model door's own route (server/body-refusals.ts DOORS_BY_ROUTE): the routes
// under a door (a cancel, a token count), the Files and Batch routes, /metrics, an unknown URL refuse a junk body
// without a record, so random URLs cannot add to the request log or to requests_total, whose labels come from the
// door, never the URL. Coverage (review of 99fc3a9d), not a bug: passes on the change.
import assert from "node:assert/strict";
import { test } from "node:test";
import { send, useGateway, useMock } from "../helpers/e2e.ts";
import { parsePrometheusText, samplesOf } from "../helpers/prometheus-text.ts";

test("junk bodies on routes that are no model door leave no record and no requests_total series", async (t) => {
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
  const paths = [
    "/v1/responses/resp_1/cancel",
    "/v1/responses/input_tokens",
    "/v1/messages/count_tokens",
    "/v1/files",
    "/v1/batches",
    "/v1/conversations",
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
  const records = (listed.json as { data: { id: string; endpoint: string }[] }).data;
  assert.deepEqual(
    records.map((record) => [record.id, record.endpoint]),
    [[door.headers["x-request-id"], "chat"]],
  );
  const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics")).text);
  const series = samplesOf(metrics, "llm_gateway_requests_total").filter((sample) => sample.value > 0);
  assert.deepEqual(
    series.map((sample) => sample.labels.endpoint),
    ["chat"],
  );
});
