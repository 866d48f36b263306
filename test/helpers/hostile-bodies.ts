// The scene of the hostile-body tests (test/e2e/hostile-*-bodies.test.ts): one mock provider serving chat model `m`,
// the gateway with its request log, and the asserts every refusal of a bad body must pass: in the door's protocol,
// recorded as the client's error, and nothing sent upstream.
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import type OpenAI from "openai";
import { oneProviderYaml, openAiClient, recordsOf, useGateway, useMock } from "./e2e.ts";
import type { TestGateway } from "./gateway.ts";
import type { MockUpstream } from "./mock-upstream.ts";

export async function hostileScene(
  t: TestContext,
): Promise<{ mock: MockUpstream; gateway: TestGateway; client: OpenAI }> {
  const mock = await useMock(t);
  const gateway = await useGateway(t, `${oneProviderYaml(mock)}request_log:\n  enabled: true\n`);
  return { mock, gateway, client: openAiClient(gateway) };
}

/**
 * The gateway's books saw `count` refusals at `endpoint` as a client's error (400, `rejected`, no attempt: no
 * candidate cools down or is charged), and the mock upstream got no request beyond discovery's.
 */
export async function assertRefusedBeforeUpstream(
  gateway: TestGateway,
  mock: MockUpstream,
  endpoint: string,
  count: number,
): Promise<void> {
  assert.deepEqual(
    mock.requests.filter((recorded) => recorded.method !== "GET").map((recorded) => recorded.path),
    [],
    "nothing may reach the upstream",
  );
  const { records } = await recordsOf(gateway, endpoint);
  assert.equal(records.length, count, `records of ${endpoint}`);
  for (const record of records) {
    assert.deepEqual([record.status, record.outcome, record.attempts.length], [400, "rejected", 0]);
  }
}
