// What every book says of a request no upstream reported usage for: the gateway's estimate, marked as one, in the
// record and its attempt, the request log, both token metrics (`source="estimated"`), /stats, the deployment's tpm
// window and the dashboard's feed (docs/observability.md, docs/limits.md). Shared by the stream and JSON tests.
import assert from "node:assert/strict";
import type { RequestRecord } from "../../src/observability/request-record.ts";
import { rowOf, send, statsOf } from "./e2e.ts";
import type { TestGateway } from "./gateway.ts";
import { deploymentTpmUsed } from "./limits-scene.ts";
import { parsePrometheusText, sumOf } from "./prometheus-text.ts";
import { waitUntil } from "./sse-client.ts";
import { MODEL } from "./two-providers.ts";

/** `expected`: [prompt tokens, output tokens] as the gateway estimated them, served by alpha's `m`. */
export async function assertCountedByEstimate(
  gateway: TestGateway,
  records: readonly RequestRecord[],
  endpoint: string,
  expected: readonly [number, number],
): Promise<void> {
  await waitUntil(() => records.length === 1, "the request's record");
  const record = records[0] as RequestRecord;
  assert.ok(expected[0] > 0 && expected[1] > 0);
  assert.equal(record.outcome, "success");
  assert.deepEqual([record.tokensIn, record.tokensOut, record.isUsageEstimated], [...expected, true], "the record");
  const attempt = record.attempts[0];
  assert.deepEqual(
    [record.attempts.length, attempt?.tokensIn, attempt?.tokensOut, attempt?.isUsageEstimated],
    [1, ...expected, true],
    "its attempt: what its deployment is counted",
  );

  const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=1");
  const logged = (listed.json as { data: RequestRecord[] }).data[0];
  assert.equal(logged?.endpoint, endpoint);
  assert.deepEqual([logged?.tokensIn, logged?.tokensOut, logged?.isUsageEstimated], [...expected, true], "request log");

  const scraped = await send(gateway, "GET", "/metrics");
  assert.equal(scraped.status, 200, scraped.text);
  const metrics = parsePrometheusText(scraped.text);
  const tokens = (direction: string) =>
    sumOf(metrics, "llm_gateway_tokens_total", { provider: "alpha", direction, source: "estimated" });
  const clientTokens = (direction: string) =>
    sumOf(metrics, "llm_gateway_client_tokens_total", { client: "none", direction, source: "estimated" });
  assert.deepEqual([tokens("in"), tokens("out")], expected, "llm_gateway_tokens_total");
  assert.deepEqual([clientTokens("in"), clientTokens("out")], expected, "llm_gateway_client_tokens_total");
  assert.equal(sumOf(metrics, "llm_gateway_tokens_total", { source: "reported" }), 0);

  const alpha = rowOf(await statsOf(gateway), `alpha/${MODEL}`);
  assert.deepEqual([alpha.tokens_in, alpha.tokens_out, alpha.successes], [...expected, 1], "/stats");
  assert.equal(await deploymentTpmUsed(gateway, "alpha"), expected[0] + expected[1], "the tpm window");

  const dashboard = await send(gateway, "GET", "/dashboard/api/state");
  const feed = (dashboard.json as { feed: { tokensIn: number; tokensOut: number; isUsageEstimated: boolean }[] }).feed;
  assert.deepEqual(
    [feed[0]?.tokensIn, feed[0]?.tokensOut, feed[0]?.isUsageEstimated],
    [...expected, true],
    "the dashboard",
  );
}
