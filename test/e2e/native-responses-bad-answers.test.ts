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

function call(fields: Record<string, unknown>) {
  return { type: "function_call", id: "fc_1", call_id: "call_1", name: "get_weather", arguments: "{}", ...fields };
}

function message(content: unknown[]) {
  return { type: "message", id: "msg_1", role: "assistant", status: "completed", content };
}

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
  // Each shape below was served as a success, kept, and joined its conversation as it came: every later turn of that
  // conversation was then refused (a 400 naming `conversation[1].name`, `.arguments`, `.content[0].text`, ...).
  "an output item with no type": { kind: "json", body: { ...SERVED, output: [{ id: "x" }] } },
  "a function_call whose name is no string": { kind: "json", body: { ...SERVED, output: [call({ name: 5 })] } },
  "a function_call with no name": { kind: "json", body: { ...SERVED, output: [call({ name: undefined })] } },
  "a function_call whose arguments are no string": {
    kind: "json",
    body: { ...SERVED, output: [call({ arguments: { city: "Paris" } })] },
  },
  "a function_call whose call_id is no string": { kind: "json", body: { ...SERVED, output: [call({ call_id: 7 })] } },
  "a function_call whose namespace is no string": {
    kind: "json",
    body: { ...SERVED, output: [call({ namespace: 7 })] },
  },
  // Strings, but ones the conversation's next turn refuses (request-schema.ts: non-empty, a namespace of at most 256
  // characters): kept as they came, every later turn was a 400 (native-responses-empty-call-fields.test.ts).
  "a function_call whose call_id is empty": { kind: "json", body: { ...SERVED, output: [call({ call_id: "" })] } },
  "a function_call whose name is empty": { kind: "json", body: { ...SERVED, output: [call({ name: "" })] } },
  "a function_call whose namespace is empty": { kind: "json", body: { ...SERVED, output: [call({ namespace: "" })] } },
  "a function_call whose namespace is over 256 characters": {
    kind: "json",
    body: { ...SERVED, output: [call({ namespace: "n".repeat(257) })] },
  },
  "a custom_tool_call whose call_id is empty": {
    kind: "json",
    body: { ...SERVED, output: [{ type: "custom_tool_call", id: "ct_1", call_id: "", name: "f", input: "x" }] },
  },
  "a custom_tool_call whose input is no string": {
    kind: "json",
    body: { ...SERVED, output: [{ type: "custom_tool_call", id: "ct_1", call_id: "c", name: "f", input: 5 }] },
  },
  "an output_text part whose text is no string": {
    kind: "json",
    body: { ...SERVED, output: [message([{ type: "output_text", text: 5, annotations: [] }])] },
  },
  "an output_text part whose annotations are no list": {
    kind: "json",
    body: { ...SERVED, output: [message([{ type: "output_text", text: "x", annotations: "none" }])] },
  },
  // A hosted tool's item the next turn's input refuses (responses-items.ts: the fields OpenAI's reference requires of it).
  "a web_search_call with no action": {
    kind: "json",
    body: { ...SERVED, output: [{ type: "web_search_call", id: "ws_1", status: "completed" }] },
  },
  "an mcp_call whose arguments are no string": {
    kind: "json",
    body: {
      ...SERVED,
      output: [{ type: "mcp_call", id: "mcp_1", server_label: "docs", name: "lookup", arguments: { topic: "x" } }],
    },
  },
  "an assistant message with an input_image part": {
    kind: "json",
    body: { ...SERVED, output: [message([{ type: "input_image", image_url: "https://example.com/a.png" }])] },
  },
  "a refusal part whose refusal is no string": {
    kind: "json",
    body: { ...SERVED, output: [message([{ type: "refusal", refusal: 5 }])] },
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

test("a native answer calling a renamed tool by no name: a bad_response, the next candidate's call comes back under the client's name", async (t) => {
  const { first, second, gateway } = await nativeScene(t);
  // Over 64 characters: the body goes upstream with the tool renamed, and the answer's calls are named back.
  const longName = `lookup_${"x".repeat(70)}`;
  first.setDefault(RESPONSES_ROUTE, { kind: "json", body: { ...SERVED, output: [call({ name: null })] } });
  second.setDefault(RESPONSES_ROUTE, (request) => {
    const sent = (request.body as { tools: { name: string }[] }).tools[0]?.name;
    return { kind: "json", body: { ...SERVED, output: [call({ name: sent })] } };
  });
  const tools = [{ type: "function", name: longName, parameters: { type: "object", properties: {} } }];
  const response = await send(gateway, "POST", "/v1/responses", { body: { model: "n", input: "hi", tools } });
  assert.equal(response.status, 200, response.text);
  const output = (response.json as { output: { name?: string }[] }).output;
  assert.deepEqual(
    output.map((item) => item.name),
    [longName],
  );
  const record = await recordOf(gateway, response.headers["x-request-id"]);
  assert.deepEqual(
    record.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
    [
      ["first", "bad_response"],
      ["second", "success"],
    ],
  );
});
