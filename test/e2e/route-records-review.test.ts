// Review of the route records (server/route-records.ts): what a caller's request line or headers carry into the record
// of a request no door serves, or one the HTTP server refused before routing.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { test } from "node:test";
import { send, type useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { recordingGateway } from "../helpers/recording-gateway.ts";

const TEAM_KEY = "sk-team-key-secret-2c7d";
const TEAM = { authorization: `Bearer ${TEAM_KEY}` };
/** An unnamed key: it lists every client's records (a named one only its own). */
const READER_KEY = "sk-reader-key-4e1f";
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

interface ListedRecord {
  readonly id: string;
  readonly endpoint: string;
  readonly clientProtocol: string;
  readonly route?: string;
  readonly status: number;
  readonly outcome: string;
  readonly trace?: { readonly traceId: string; readonly parentSpanId?: string };
}

async function scene(t: Parameters<typeof useMock>[0]): Promise<TestGateway> {
  return recordingGateway(t, { unnamed: READER_KEY, team: TEAM_KEY }, { server: "  request_timeout_ms: 600\n" });
}

async function listed(gateway: TestGateway): Promise<ListedRecord[]> {
  const response = await send(gateway, "GET", "/v1/gateway/requests?limit=500", {
    headers: { authorization: `Bearer ${READER_KEY}` },
  });
  assert.equal(response.status, 200, response.text);
  return (response.json as { data: ListedRecord[] }).data;
}

/** Writes `request` on a fresh connection; resolves with everything the gateway wrote before it closed. */
function rawExchange(gateway: TestGateway, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const socket = connect(gateway.port, "127.0.0.1", () => socket.write(request));
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
    });
    socket.on("close", () => resolve(text));
    socket.on("error", reject);
    setTimeout(() => socket.destroy(), 5_000).unref();
  });
}

function requestIdOf(answer: string): string {
  const id = /^x-request-id: (.+)\r$/m.exec(answer.split("\r\n\r\n")[0] ?? "")?.[1];
  assert.ok(id !== undefined, `no x-request-id in ${answer.slice(0, 300)}`);
  return id;
}

test("a route request with a caller's traceparent keeps the caller's trace in its record, as a door's does", async (t) => {
  const gateway = await scene(t);
  const created = await send(gateway, "POST", "/v1/conversations", {
    headers: { ...TEAM, "content-type": "application/json", traceparent: TRACEPARENT },
    body: {},
  });
  assert.equal(created.status, 200, created.text);
  const id = created.headers["x-request-id"];
  // A door's refused body (body-refusals.ts) keeps it: the same request shape on a door.
  const refused = await send(gateway, "POST", "/v1/chat/completions", {
    headers: { ...TEAM, "content-type": "application/json", traceparent: TRACEPARENT },
    body: "{not json",
  });
  assert.equal(refused.status, 400, refused.text);
  const records = await listed(gateway);
  const door = records.find((record) => record.id === refused.headers["x-request-id"]);
  assert.equal(door?.trace?.traceId, TRACE_ID, "the door's refusal keeps the trace");
  const route = records.find((record) => record.id === id);
  assert.equal(route?.route, "POST /v1/conversations");
  assert.equal(route?.trace?.traceId, TRACE_ID, "the route's record lost the caller's trace");
  assert.equal(route?.trace?.parentSpanId, "00f067aa0ba902b7");
});

test("headers too large on a path with a query (Anthropic's SDK: /v1/messages?beta=true) are recorded under its door", async (t) => {
  const gateway = await scene(t);
  const host = "host: 127.0.0.1\r\n";
  const cases = [
    { path: "/v1/messages?beta=true", endpoint: "messages", protocol: "anthropic-messages" },
    { path: "/v1/chat/completions?api-version=2024-10-21", endpoint: "chat", protocol: "openai-chat" },
    { path: "/v1/files?purpose=batch", endpoint: "files", protocol: "openai-batch" },
  ];
  const ids: string[] = [];
  for (const refusal of cases) {
    const answer = await rawExchange(
      gateway,
      `POST ${refusal.path} HTTP/1.1\r\n${host}x-big: ${"b".repeat(20_000)}\r\n\r\n`,
    );
    assert.match(answer, /^HTTP\/1\.1 431 /, answer.slice(0, 200));
    ids.push(requestIdOf(answer));
  }
  const records = await listed(gateway);
  for (const [index, refusal] of cases.entries()) {
    const record = records.find((candidate) => candidate.id === ids[index]);
    assert.deepEqual(
      [record?.endpoint, record?.clientProtocol, record?.route, record?.status],
      [refusal.endpoint, refusal.protocol, "unknown", 431],
      refusal.path,
    );
  }
});

test("a door's body too slow (408) leaves one record, not a second one when its socket closes", async (t) => {
  const gateway = await scene(t);
  const answer = await rawExchange(
    gateway,
    `POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${TEAM_KEY}\r\n` +
      `content-type: application/json\r\ncontent-length: 100\r\n\r\n{"model":`,
  );
  assert.match(answer, /^HTTP\/1\.1 408 /);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const records = await listed(gateway);
  assert.equal(records.length, 1, JSON.stringify(records));
});

test("a body too slow (408) on /v1/messages and on count_tokens leaves one record each, under the id its answer names", async (t) => {
  const gateway = await scene(t);
  const cases = [
    { path: "/v1/messages", endpoint: "messages", route: "unknown" },
    { path: "/v1/messages/count_tokens", endpoint: "count_tokens", route: "POST /v1/messages/count_tokens" },
  ];
  const ids: string[] = [];
  for (const slow of cases) {
    const answer = await rawExchange(
      gateway,
      `POST ${slow.path} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: ${TEAM_KEY}\r\nanthropic-version: 2023-06-01\r\n` +
        `content-type: application/json\r\ncontent-length: 100\r\n\r\n{"model":`,
    );
    assert.match(answer, /^HTTP\/1\.1 408 /, answer.slice(0, 200));
    assert.match(answer, /"type":"error"/, "Anthropic's shape");
    ids.push(requestIdOf(answer));
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  const records = await listed(gateway);
  assert.deepEqual(
    records.map((record) => [record.id, record.endpoint, record.route, record.status]).sort(),
    cases.map((slow, index) => [ids[index], slow.endpoint, slow.route, 408]).sort(),
  );
});

test("an Expect the gateway does not take (417) on /v1/messages is answered in Anthropic's shape with its record's id", async (t) => {
  const gateway = await scene(t);
  const answer = await rawExchange(
    gateway,
    `POST /v1/messages?beta=true HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: ${TEAM_KEY}\r\nexpect: teapot\r\n` +
      "content-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
  );
  assert.match(answer, /^HTTP\/1\.1 417 /, answer.slice(0, 200));
  const id = requestIdOf(answer);
  const [head = "", body = ""] = answer.split("\r\n\r\n");
  // Anthropic's SDKs read `request-id` and `error.type`, as on every other answer of the Messages routes.
  assert.match(head, new RegExp(`^request-id: ${id}\\r?$`, "m"), head);
  assert.deepEqual(JSON.parse(body), {
    type: "error",
    error: { type: "invalid_request_error", message: "Only `Expect: 100-continue` is supported." },
    request_id: id,
  });
  const records = await listed(gateway);
  assert.deepEqual(
    records.map((record) => [record.id, record.endpoint, record.status]),
    [[id, "messages", 417]],
  );
});

test("a client that resets its connection mid-upload on a route leaves one client_aborted (499) record with its route and client", async (t) => {
  const gateway = await scene(t);
  const id = "upload-left-7f3a";
  await new Promise<void>((resolve, reject) => {
    const socket = connect(gateway.port, "127.0.0.1", () => {
      socket.write(
        `POST /v1/files HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${TEAM_KEY}\r\nx-request-id: ${id}\r\n` +
          "content-type: multipart/form-data; boundary=b\r\ncontent-length: 100000\r\n\r\n--b\r\n",
      );
      setTimeout(() => socket.resetAndDestroy(), 150);
    });
    socket.on("close", () => resolve());
    socket.on("error", reject);
  });
  let found: ListedRecord[] = [];
  for (let tries = 0; tries < 50 && found.length === 0; tries++) {
    found = (await listed(gateway)).filter((record) => record.id === id);
    if (found.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  const records = await listed(gateway);
  assert.deepEqual(
    records.map((record) => [record.id, record.endpoint, record.route, record.status, record.outcome]),
    [[id, "files", "POST /v1/files", 499, "client_aborted"]],
  );
});

test("a URL that does not decode (400) and an Expect refused (417) keep the caller's traceparent in their records", async (t) => {
  const gateway = await scene(t);
  const ids: string[] = [];
  for (const request of [
    `GET /v1/models/%E0%A4%A HTTP/1.1\r\nhost: 127.0.0.1\r\ntraceparent: ${TRACEPARENT}\r\nconnection: close\r\n\r\n`,
    `GET /ok HTTP/1.1\r\nhost: 127.0.0.1\r\ntraceparent: ${TRACEPARENT}\r\nexpect: teapot\r\n\r\n`,
  ]) {
    const answer = await rawExchange(gateway, request);
    assert.match(answer, /^HTTP\/1\.1 4\d\d /, answer.slice(0, 200));
    ids.push(requestIdOf(answer));
  }
  const records = await listed(gateway);
  assert.deepEqual(
    ids.map((id) => records.find((record) => record.id === id)?.trace?.traceId),
    [TRACE_ID, TRACE_ID],
  );
});
