// A native Responses provider (`responses_api: native`) answering 200 with what is no Responses answer (a body that
// is not JSON, truncated JSON, no `output` list, an `output` item that is no object, a message whose `content` is no
// list of parts) is a failed attempt (`bad_response`), as a chat answer without `choices` is: the next candidate is
// tried, and with none left the client gets a 502 `upstream_unavailable`. Before, the attempt counted a success and
// the door's translation refused it (a 502 trying no other candidate) or threw on it (a 500 `internal_error`).
import assert from "node:assert/strict";
import { test } from "node:test";
import { send, useGateway, useMock } from "../helpers/e2e.ts";
import type { MockStep, MockUpstream } from "../helpers/mock-upstream.ts";

const RESPONSES_ROUTE = "POST /v1/responses";

const SERVED = {
  id: "resp_upstream",
  object: "response",
  status: "completed",
  model: "n",
  output: [
    {
      type: "message",
      id: "msg_1",
      role: "assistant",
      status: "completed",
      content: [{ type: "output_text", text: "Served.", annotations: [] }],
    },
  ],
  usage: { input_tokens: 3, output_tokens: 2, total_tokens: 5 },
};

const json = { "content-type": "application/json" };

const BAD_ANSWERS: Record<string, MockStep> = {
  "HTML typed as JSON": { kind: "text", status: 200, body: "<html>Bad gateway</html>", headers: json },
  "truncated JSON": { kind: "text", status: 200, body: '{"id":"resp_1","output":[', headers: json },
  "no output": { kind: "json", body: { id: "resp_1", object: "response", status: "completed" } },
  "an output that is no list": { kind: "json", body: { ...SERVED, output: "x" } },
  "an output item that is no object": { kind: "json", body: { ...SERVED, output: [null] } },
  "a message whose content is no list": {
    kind: "json",
    body: { ...SERVED, output: [{ type: "message", id: "msg_1", role: "assistant", content: 5 }] },
  },
};

interface ListedRecord {
  readonly id: string;
  readonly status: number;
  readonly outcome: string;
  readonly attempts: readonly { provider: string; outcome: string }[];
}

async function nativeScene(t: Parameters<typeof useMock>[0]) {
  const first = await useMock(t);
  const second = await useMock(t);
  const provider = (name: string, mock: MockUpstream) => `  - name: ${name}
    base_url: ${mock.baseUrl}
    api_key: sk-${name}
    responses_api: native
    retries: 0
    models:
      n: { id: n }
`;
  const gateway = await useGateway(
    t,
    `providers:\n${provider("first", first)}${provider("second", second)}request_log:\n  enabled: true\n`,
  );
  return { first, second, gateway };
}

async function recordOf(gateway: Awaited<ReturnType<typeof nativeScene>>["gateway"], id: string | undefined) {
  const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=20");
  const record = (listed.json as { data: ListedRecord[] }).data.find((candidate) => candidate.id === id);
  assert.ok(record, `no record of ${id}`);
  return record;
}

for (const [what, bad] of Object.entries(BAD_ANSWERS)) {
  test(`a native Responses answer with ${what}: a bad_response, the next candidate serves it`, async (t) => {
    const { first, second, gateway } = await nativeScene(t);
    first.setDefault(RESPONSES_ROUTE, bad);
    second.setDefault(RESPONSES_ROUTE, { kind: "json", body: SERVED });
    const response = await send(gateway, "POST", "/v1/responses", { body: { model: "n", input: "hi" } });
    assert.equal(response.status, 200, response.text);
    assert.equal((response.json as { output_text?: string }).output_text, "Served.");
    const record = await recordOf(gateway, response.headers["x-request-id"]);
    assert.deepEqual(
      record.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
      [
        ["first", "bad_response"],
        ["second", "success"],
      ],
    );
  });
}

test("every native candidate answering no Responses answer: a 502 upstream_unavailable, recorded as bad_response", async (t) => {
  const { first, second, gateway } = await nativeScene(t);
  const bad = BAD_ANSWERS["a message whose content is no list"];
  assert.ok(bad);
  first.setDefault(RESPONSES_ROUTE, bad);
  second.setDefault(RESPONSES_ROUTE, bad);
  const response = await send(gateway, "POST", "/v1/responses", { body: { model: "n", input: "hi" } });
  assert.equal(response.status, 502, response.text);
  assert.equal((response.json as { error: { code: string } }).error.code, "upstream_unavailable");
  const record = await recordOf(gateway, response.headers["x-request-id"]);
  assert.deepEqual([record.status, record.outcome], [502, "bad_response"]);
  assert.deepEqual(
    record.attempts.map((attempt) => attempt.outcome),
    ["bad_response", "bad_response"],
  );
});
