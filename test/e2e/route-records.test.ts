// The routes no model door serves leave one record per request too (server/route-records.ts): every route of the
// Conversations API, the Files and Batch APIs, kept responses and the two token counts, what they answer and what they
// refuse (their bodies included), with the route as registered, the status the client got, the client key's name, an
// outcome and the time from arrival to the answer; never the key, never the body. Before, none of them had a record,
// and a door's refused body was recorded with a duration of 0.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { send, type useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { parsePrometheusText, sumOf } from "../helpers/prometheus-text.ts";
import { recordingGateway } from "../helpers/recording-gateway.ts";

/** In bodies sent: no record, and no listing of them, may show it. */
const SECRET = "sk-body-secret-77e2";
const TEAM_KEY = "sk-team-key-secret-5d1a";
const READER_KEY = "sk-reader-key-9c4b";
const TEAM = { authorization: `Bearer ${TEAM_KEY}` };
const JSON_TEAM = { ...TEAM, "content-type": "application/json" };

interface ListedRecord {
  readonly id: string;
  readonly endpoint: string;
  readonly clientProtocol: string;
  readonly route?: string;
  readonly requestedModel: string;
  readonly client?: string;
  readonly status: number;
  readonly outcome: string;
  readonly errorCode?: string;
  readonly attempts: readonly unknown[];
  readonly candidates: readonly unknown[];
  readonly durationMs: number;
}

async function scene(t: Parameters<typeof useMock>[0], extra = ""): Promise<TestGateway> {
  return recordingGateway(t, { unnamed: READER_KEY, team: TEAM_KEY }, { extra });
}

/** Every record the reader (an unnamed key) sees, and the raw listing. */
async function listed(gateway: TestGateway): Promise<{ records: ListedRecord[]; text: string }> {
  const response = await send(gateway, "GET", "/v1/gateway/requests?limit=200", {
    headers: { authorization: `Bearer ${READER_KEY}` },
  });
  assert.equal(response.status, 200, response.text);
  return { records: (response.json as { data: ListedRecord[] }).data, text: response.text };
}

async function metricsOf(gateway: TestGateway) {
  const response = await send(gateway, "GET", "/metrics", { headers: { authorization: `Bearer ${READER_KEY}` } });
  assert.equal(response.status, 200, response.text);
  return parsePrometheusText(response.text);
}

/** An expected record: the answer's request id, then what its record says. */
type Expected = [id: string, route: string, status: number, outcome: string];

test("every Conversations route leaves one record: route, status, client name, outcome; its refusals too", async (t) => {
  const gateway = await scene(t);
  const expected: Expected[] = [];
  const call = async (
    method: "GET" | "HEAD" | "POST" | "DELETE",
    path: string,
    route: string,
    status: number,
    body?: unknown,
  ): Promise<unknown> => {
    const response = await send(gateway, method, path, {
      ...(body === undefined ? {} : { body }),
      headers: body === undefined ? TEAM : JSON_TEAM,
    });
    assert.equal(response.status, status, `${method} ${path}: ${response.text}`);
    const id = response.headers["x-request-id"];
    assert.ok(id !== undefined);
    expected.push([id, route, status, status < 400 ? "success" : "rejected"]);
    return response.json;
  };
  const base = "/v1/conversations";
  const created = (await call("POST", base, `POST ${base}`, 200, {
    items: [{ type: "message", role: "user", content: SECRET }],
  })) as { id: string };
  const id = created.id;
  await call("GET", `${base}/${id}`, `GET ${base}/:id`, 200);
  await call("POST", `${base}/${id}`, `POST ${base}/:id`, 200, { metadata: { topic: "x" } });
  await call("POST", `${base}/${id}/items`, `POST ${base}/:id/items`, 200, {
    items: [{ type: "message", role: "user", content: `more ${SECRET}` }],
  });
  const items = (await call("GET", `${base}/${id}/items`, `GET ${base}/:id/items`, 200)) as { data: { id: string }[] };
  const itemId = items.data[0]?.id ?? "";
  await call("GET", `${base}/${id}/items/${itemId}`, `GET ${base}/:id/items/:itemId`, 200);
  await call("DELETE", `${base}/${id}/items/${itemId}`, `DELETE ${base}/:id/items/:itemId`, 200);
  await call("DELETE", `${base}/${id}`, `DELETE ${base}/:id`, 200);
  // Refusals: a conversation that is not there, a body without what the route needs, a body that is no JSON.
  await call("GET", `${base}/conv_missing`, `GET ${base}/:id`, 404);
  await call("POST", `${base}/${id}`, `POST ${base}/:id`, 404, { metadata: {} });
  await call("POST", `${base}`, `POST ${base}`, 400, `{"items":[${SECRET}`);
  // Without /v1 too: the route as registered.
  await call("GET", `/conversations/conv_missing`, "GET /conversations/:id", 404);
  // A GET route's HEAD twin: one record, under its own method.
  await call("HEAD", `${base}/conv_missing`, `HEAD ${base}/:id`, 404);
  const { records, text } = await listed(gateway);
  for (const [requestId, route, status, outcome] of expected) {
    const found = records.filter((record) => record.id === requestId);
    assert.equal(found.length, 1, `one record of ${route} ${status}`);
    const record = found[0] as ListedRecord;
    assert.deepEqual(
      [record.endpoint, record.clientProtocol, record.route, record.status, record.outcome, record.client],
      ["conversations", "openai-responses", route, status, outcome, "team-a"],
      route,
    );
    assert.equal(record.requestedModel, "");
    assert.deepEqual([record.candidates, record.attempts], [[], []]);
    assert.equal(record.errorCode !== undefined, status >= 400, `${route} ${status}: errorCode ${record.errorCode}`);
  }
  assert.equal(records.length, expected.length, "one record per request, no more");
  assert.ok(!text.includes(SECRET), "a body sent is in the request log");
  assert.ok(!text.includes(TEAM_KEY), "the client's key is in the request log");
  const metrics = await metricsOf(gateway);
  const labels = { endpoint: "conversations", protocol: "openai-responses" };
  assert.equal(sumOf(metrics, "llm_gateway_requests_total", { ...labels, status_class: "2xx" }), 8);
  assert.equal(sumOf(metrics, "llm_gateway_requests_total", { ...labels, status_class: "4xx" }), 5);
  assert.equal(sumOf(metrics, "llm_gateway_client_requests_total", { client: "team-a" }), 13);
  assert.equal(sumOf(metrics, "llm_gateway_request_duration_seconds_count", { endpoint: "conversations" }), 13);
});

/** An upload's bytes as Node's own `Request` encodes the form (ASCII only). */
async function uploadForm(text: string): Promise<{ body: string; headers: Record<string, string> }> {
  const form = new FormData();
  form.append("purpose", "batch");
  form.append("file", new Blob([text]), "lines.jsonl");
  const encoder = new Request("http://localhost/", { method: "POST", body: form });
  return {
    body: Buffer.from(await encoder.arrayBuffer()).toString("latin1"),
    headers: { ...TEAM, "content-type": encoder.headers.get("content-type") ?? "" },
  };
}

test("files, batches, token counts and kept responses: an answer and a refused body each leave a record", async (t) => {
  const gateway = await scene(t);
  const line = JSON.stringify({
    custom_id: "a",
    method: "POST",
    url: "/v1/chat/completions",
    body: { model: "m", messages: [{ role: "user", content: SECRET }] },
  });
  const junk = { body: `{"model":"m","x":"${SECRET}"`, headers: JSON_TEAM };
  const cases: {
    what: string;
    method: "GET" | "POST";
    path: string;
    options: { body?: string; headers: Record<string, string> };
    status: number;
    endpoint: string;
    protocol: string;
    route: string;
  }[] = [
    {
      what: "upload",
      method: "POST",
      path: "/v1/files",
      options: await uploadForm(line),
      status: 200,
      endpoint: "files",
      protocol: "openai-batch",
      route: "POST /v1/files",
    },
    {
      what: "upload as JSON",
      method: "POST",
      path: "/v1/files",
      options: junk,
      status: 400,
      endpoint: "files",
      protocol: "openai-batch",
      route: "POST /v1/files",
    },
    {
      what: "list batches",
      method: "GET",
      path: "/v1/batches",
      options: { headers: TEAM },
      status: 200,
      endpoint: "batches",
      protocol: "openai-batch",
      route: "GET /v1/batches",
    },
    {
      what: "batch: junk",
      method: "POST",
      path: "/v1/batches",
      options: junk,
      status: 400,
      endpoint: "batches",
      protocol: "openai-batch",
      route: "POST /v1/batches",
    },
    {
      what: "count_tokens",
      method: "POST",
      path: "/v1/messages/count_tokens",
      options: {
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: SECRET }] }),
        headers: JSON_TEAM,
      },
      status: 200,
      endpoint: "count_tokens",
      protocol: "anthropic-messages",
      route: "POST /v1/messages/count_tokens",
    },
    {
      what: "count_tokens: junk",
      method: "POST",
      path: "/v1/messages/count_tokens",
      options: junk,
      status: 400,
      endpoint: "count_tokens",
      protocol: "anthropic-messages",
      route: "POST /v1/messages/count_tokens",
    },
    {
      what: "input_tokens",
      method: "POST",
      path: "/v1/responses/input_tokens",
      options: { body: JSON.stringify({ model: "m", input: SECRET }), headers: JSON_TEAM },
      status: 200,
      endpoint: "input_tokens",
      protocol: "openai-responses",
      route: "POST /v1/responses/input_tokens",
    },
    {
      what: "input_tokens: junk",
      method: "POST",
      path: "/v1/responses/input_tokens",
      options: junk,
      status: 400,
      endpoint: "input_tokens",
      protocol: "openai-responses",
      route: "POST /v1/responses/input_tokens",
    },
    {
      what: "a kept response not kept",
      method: "GET",
      path: "/v1/responses/resp_missing",
      options: { headers: TEAM },
      status: 404,
      endpoint: "kept_responses",
      protocol: "openai-responses",
      route: "GET /v1/responses/:id",
    },
    {
      what: "cancel: junk",
      method: "POST",
      path: "/v1/responses/resp_missing/cancel",
      options: junk,
      status: 400,
      endpoint: "kept_responses",
      protocol: "openai-responses",
      route: "POST /v1/responses/:id/cancel",
    },
  ];
  const ids: string[] = [];
  for (const sent of cases) {
    const response = await send(gateway, sent.method, sent.path, sent.options);
    assert.equal(response.status, sent.status, `${sent.what}: ${response.text}`);
    ids.push(response.headers["x-request-id"] ?? "");
  }
  const { records, text } = await listed(gateway);
  for (const [index, sent] of cases.entries()) {
    const found = records.filter((record) => record.id === ids[index]);
    assert.equal(found.length, 1, `${sent.what}: one record`);
    const record = found[0] as ListedRecord;
    assert.deepEqual(
      [record.endpoint, record.clientProtocol, record.route, record.status, record.client, record.requestedModel],
      [sent.endpoint, sent.protocol, sent.route, sent.status, "team-a", ""],
      sent.what,
    );
    assert.equal(record.outcome, sent.status < 400 ? "success" : "rejected", sent.what);
  }
  assert.equal(records.length, cases.length);
  assert.ok(!text.includes(SECRET) && !text.includes(TEAM_KEY), "a body or a key is in the request log");
  const metrics = await metricsOf(gateway);
  for (const [endpoint, protocol, count2xx, count4xx] of [
    ["files", "openai-batch", 1, 1],
    ["batches", "openai-batch", 1, 1],
    ["count_tokens", "anthropic-messages", 1, 1],
    ["input_tokens", "openai-responses", 1, 1],
    ["kept_responses", "openai-responses", 0, 2],
  ] as const) {
    const labels = { endpoint, protocol };
    assert.equal(sumOf(metrics, "llm_gateway_requests_total", { ...labels, status_class: "2xx" }), count2xx, endpoint);
    assert.equal(sumOf(metrics, "llm_gateway_requests_total", { ...labels, status_class: "4xx" }), count4xx, endpoint);
  }
});

/** Sends a POST's head, then its body `delayMs` later; resolves with the answer's head. */
function slowBody(gateway: TestGateway, path: string, body: string, delayMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = "";
    const socket = connect(gateway.port, "127.0.0.1", () => {
      socket.write(
        `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${TEAM_KEY}\r\n` +
          `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`,
      );
      setTimeout(() => socket.write(body), delayMs);
    });
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (received.includes("\r\n\r\n")) {
        socket.destroy();
        resolve(received);
      }
    });
    socket.on("error", reject);
  });
}

test("a refused body's record lasts from the request's arrival to its answer, on a door and on a route", async (t) => {
  const gateway = await scene(t);
  const delayMs = 300;
  const ids: string[] = [];
  for (const path of ["/v1/chat/completions", "/v1/conversations"]) {
    const head = await slowBody(gateway, path, `{"model":"m","x":"${SECRET}"`, delayMs);
    assert.match(head, /^HTTP\/1\.1 400 /);
    ids.push(/^x-request-id: (.+)\r$/m.exec(head)?.[1] ?? "");
  }
  const { records } = await listed(gateway);
  for (const id of ids) {
    const record = records.find((candidate) => candidate.id === id);
    assert.ok(record, `no record of ${id}`);
    // Its body came `delayMs` after its head: no answer could come sooner (before, a door's said 0).
    assert.ok(record.durationMs >= delayMs - 20, `${record.endpoint}: ${record.durationMs} ms`);
    assert.equal(record.client, "team-a");
  }
});

test("with the request log in files, a named client finds its own route records (its name sits where lookups find it)", async (t) => {
  const statePath = join(mkdtempSync(join(tmpdir(), "route-records-")), "state.sqlite");
  const gateway = await scene(t, `state:\n  path: ${JSON.stringify(statePath)}\n`);
  const created = await send(gateway, "POST", "/v1/conversations", { body: {}, headers: JSON_TEAM });
  assert.equal(created.status, 200, created.text);
  const id = created.headers["x-request-id"] ?? "";
  const own = await send(gateway, "GET", "/v1/gateway/requests?limit=10", { headers: TEAM });
  assert.equal(own.status, 200, own.text);
  const records = (own.json as { data: ListedRecord[] }).data;
  assert.deepEqual(
    records.map((record) => [record.id, record.route, record.client]),
    [[id, "POST /v1/conversations", "team-a"]],
  );
  const one = await send(gateway, "GET", `/v1/gateway/requests/${id}`, { headers: TEAM });
  assert.equal(one.status, 200, one.text);
});
