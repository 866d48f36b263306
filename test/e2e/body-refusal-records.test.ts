// A front door's request refused for its body (not JSON, a `__proto__` key in JSON or in an upload's form, over the
// size limit, a content type or encoding the door does not take) leaves its one record, as every other request does
// (server/body-refusals.ts): `rejected`, the status its client got, the door's endpoint and protocol, and nothing of
// the body. Before, the client got its 400, 413 or 415 and the request log and metrics never saw the request.
import assert from "node:assert/strict";
import { test } from "node:test";
import { send, useGateway, useMock } from "../helpers/e2e.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";

/** In every refused body: no record, and no listing of them, may show it. */
const SECRET = "sk-body-secret-4f1c";

/** An upload's bytes as Node's own `Request` encodes the form (ASCII only, so sent as a string unchanged). */
async function formBody(fields: [string, string | Blob][]): Promise<{ body: string; headers: Record<string, string> }> {
  const form = new FormData();
  for (const [name, value] of fields) {
    if (typeof value === "string") form.append(name, value);
    else form.append(name, value, "speech.mp3");
  }
  const encoder = new Request("http://localhost/", { method: "POST", body: form });
  return {
    body: Buffer.from(await encoder.arrayBuffer()).toString("latin1"),
    headers: { "content-type": encoder.headers.get("content-type") ?? "" },
  };
}

interface Refusal {
  readonly what: string;
  readonly path: string;
  readonly body: string;
  readonly headers: Record<string, string>;
  readonly status: number;
  readonly endpoint: string;
  readonly protocol: string;
}

async function refusals(): Promise<Refusal[]> {
  const json = { "content-type": "application/json" };
  const upload = await formBody([
    ["model", "whisper"],
    ["__proto__", `{"key":"${SECRET}"}`],
    ["file", new Blob(["not really audio"])],
  ]);
  const chat = { what: "", path: "/v1/chat/completions", endpoint: "chat", protocol: "openai-chat" };
  return [
    { ...chat, what: "chat: not JSON", body: `{"model":"m","key":"${SECRET}"`, headers: json, status: 400 },
    {
      ...chat,
      what: "chat: a __proto__ key",
      body: `{"model":"m","messages":[],"__proto__":{"key":"${SECRET}"}}`,
      headers: json,
      status: 400,
    },
    {
      ...chat,
      what: "chat: text/plain",
      body: `{"model":"m","key":"${SECRET}"}`,
      headers: { "content-type": "text/plain" },
      status: 400,
    },
    {
      what: "messages: not JSON",
      path: "/v1/messages",
      body: `{"model":"m","key":"${SECRET}"`,
      headers: json,
      status: 400,
      endpoint: "messages",
      protocol: "anthropic-messages",
    },
    {
      what: "responses: an unknown Content-Encoding",
      path: "/v1/responses",
      body: `{"model":"m","input":"${SECRET}"}`,
      headers: { ...json, "content-encoding": "snappy" },
      status: 415,
      endpoint: "responses",
      protocol: "openai-responses",
    },
    {
      what: "embeddings: over server.body_limit_bytes",
      path: "/v1/embeddings",
      body: JSON.stringify({ model: "m", input: `${SECRET} ${"x".repeat(4_000)}` }),
      headers: json,
      status: 413,
      endpoint: "embeddings",
      protocol: "openai-embeddings",
    },
    {
      what: "transcriptions: a __proto__ form field",
      path: "/v1/audio/transcriptions",
      ...upload,
      status: 400,
      endpoint: "transcriptions",
      protocol: "openai-audio",
    },
    {
      what: "transcriptions: JSON instead of an upload",
      path: "/v1/audio/transcriptions",
      body: JSON.stringify({ model: "whisper", file: SECRET }),
      headers: json,
      status: 400,
      endpoint: "transcriptions",
      protocol: "openai-audio",
    },
  ];
}

interface ListedRefusal {
  readonly id: string;
  readonly endpoint: string;
  readonly clientProtocol: string;
  readonly requestedModel: string;
  readonly status: number;
  readonly outcome: string;
  readonly errorCode?: string;
  readonly attempts: readonly unknown[];
}

test("a body refused by its door's parser leaves a rejected record with the status the client got, never the body", async (t) => {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
  body_limit_bytes: 2000
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: { id: m }
      whisper: { id: whisper-1, kind: transcription }
request_log:
  enabled: true
`,
  );
  const cases = await refusals();
  const ids: string[] = [];
  for (const refusal of cases) {
    const response = await send(gateway, "POST", refusal.path, { body: refusal.body, headers: refusal.headers });
    assert.equal(response.status, refusal.status, `${refusal.what}: ${response.text}`);
    const id = response.headers["x-request-id"];
    assert.ok(id !== undefined, refusal.what);
    ids.push(id);
  }
  // Nothing reached an upstream: every one was refused at the door.
  assert.deepEqual(
    mock.requests.filter((recorded) => recorded.method !== "GET"),
    [],
  );
  const listed = await send(gateway, "GET", `/v1/gateway/requests?limit=${cases.length + 5}`);
  assert.equal(listed.status, 200, listed.text);
  const records = (listed.json as { data: ListedRefusal[] }).data;
  for (const [index, refusal] of cases.entries()) {
    const record = records.find((candidate) => candidate.id === ids[index]);
    assert.ok(record, `${refusal.what}: no record of request ${ids[index]}`);
    assert.deepEqual(
      [record.endpoint, record.clientProtocol, record.status, record.outcome, record.requestedModel],
      [refusal.endpoint, refusal.protocol, refusal.status, "rejected", ""],
      refusal.what,
    );
    assert.ok(record.errorCode !== undefined && record.errorCode !== "", refusal.what);
    assert.deepEqual(record.attempts, [], refusal.what);
  }
  assert.equal(records.length, cases.length, "one record per request, no more");
  assert.ok(!listed.text.includes(SECRET), "a refused body's content is in the request log");
  const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics")).text);
  for (const [endpoint, protocol, statusClass, count] of [
    ["chat", "openai-chat", "4xx", 3],
    ["messages", "anthropic-messages", "4xx", 1],
    ["responses", "openai-responses", "4xx", 1],
    ["embeddings", "openai-embeddings", "4xx", 1],
    ["transcriptions", "openai-audio", "4xx", 2],
  ] as const) {
    assert.equal(
      sumOf(metrics, "llm_gateway_requests_total", { endpoint, protocol, status_class: statusClass }),
      count,
      `${endpoint} in requests_total`,
    );
  }
});
