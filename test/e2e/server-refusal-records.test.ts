// A request the HTTP server refuses before any route (Node's parser: a malformed request 400, headers too large 431, a
// request too slow 408; Fastify's router: a URL it cannot decode 400) leaves one record too (server/route-records.ts),
// under the request id its answer carries: `route: "unknown"`, the endpoint its request line names (a door's, a
// family's) or `unknown`, the status its client got, `rejected`. Nothing of the request but that is recorded (no key,
// no header, no URL beyond its family). A flood of them stays within the request log's retention and adds no series
// per URL to the metrics. Before, none of them left a record.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { test } from "node:test";
import { send, type useMock } from "../helpers/e2e.ts";
import type { TestGateway } from "../helpers/gateway.ts";
import { parsePrometheusText, samplesOf, sumOf } from "../helpers/prometheus-text.ts";
import { recordingGateway } from "../helpers/recording-gateway.ts";

const CLIENT_KEY = "sk-client-key-secret-31ab";
const TEAM_KEY = "sk-team-key-secret-0f9e";
const AUTH = { authorization: `Bearer ${CLIENT_KEY}` };

interface ListedRecord {
  readonly id: string;
  readonly endpoint: string;
  readonly clientProtocol: string;
  readonly route?: string;
  readonly client?: string;
  readonly status: number;
  readonly outcome: string;
  readonly errorCode?: string;
}

async function scene(t: Parameters<typeof useMock>[0], extra = ""): Promise<TestGateway> {
  return recordingGateway(t, { unnamed: CLIENT_KEY, team: TEAM_KEY }, { server: "  request_timeout_ms: 600\n", extra });
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

async function listed(gateway: TestGateway): Promise<{ records: ListedRecord[]; text: string }> {
  const response = await send(gateway, "GET", "/v1/gateway/requests?limit=500", { headers: AUTH });
  assert.equal(response.status, 200, response.text);
  return { records: (response.json as { data: ListedRecord[] }).data, text: response.text };
}

test("malformed HTTP (400), oversized headers (431), an undecodable URL (400), Expect (417), slow headers (408): a record each", async (t) => {
  const gateway = await scene(t);
  const host = "host: 127.0.0.1\r\n";
  const cases = [
    { what: "not HTTP", request: "NOT-HTTP\r\n\r\n", status: 400, endpoint: "unknown", protocol: "unknown" },
    {
      what: "headers too large on a door",
      request: `POST /v1/chat/completions HTTP/1.1\r\n${host}authorization: Bearer ${CLIENT_KEY}\r\nx-big: ${"b".repeat(20_000)}\r\n\r\n`,
      status: 431,
      endpoint: "chat",
      protocol: "openai-chat",
    },
    {
      what: "headers too large on a conversation",
      request: `GET /v1/conversations/conv_1 HTTP/1.1\r\n${host}x-big: ${"b".repeat(20_000)}\r\n\r\n`,
      status: 431,
      endpoint: "conversations",
      protocol: "openai-responses",
    },
    {
      what: "an undecodable URL",
      request: `GET /v1/models/%E0%A4%A HTTP/1.1\r\n${host}authorization: Bearer ${CLIENT_KEY}\r\nconnection: close\r\n\r\n`,
      status: 400,
      endpoint: "unknown",
      protocol: "unknown",
    },
    {
      what: "an Expect the gateway does not take",
      request: `GET /ok HTTP/1.1\r\n${host}expect: teapot\r\n\r\n`,
      status: 417,
      endpoint: "unknown",
      protocol: "unknown",
    },
    {
      what: "headers too slow",
      request: `POST /v1/chat/completions HTTP/1.1\r\n${host}`,
      status: 408,
      endpoint: "unknown",
      protocol: "unknown",
    },
  ];
  const ids: string[] = [];
  for (const refusal of cases) {
    const answer = await rawExchange(gateway, refusal.request);
    assert.match(answer, new RegExp(`^HTTP/1\\.1 ${refusal.status} `), `${refusal.what}: ${answer.slice(0, 200)}`);
    ids.push(requestIdOf(answer));
  }
  const { records, text } = await listed(gateway);
  for (const [index, refusal] of cases.entries()) {
    const found = records.filter((record) => record.id === ids[index]);
    assert.equal(found.length, 1, `${refusal.what}: one record`);
    const record = found[0] as ListedRecord;
    assert.deepEqual(
      [record.endpoint, record.clientProtocol, record.route, record.status, record.outcome, record.client],
      [refusal.endpoint, refusal.protocol, "unknown", refusal.status, "rejected", undefined],
      refusal.what,
    );
    assert.ok(record.errorCode !== undefined, refusal.what);
  }
  assert.equal(records.length, cases.length);
  assert.ok(!text.includes(CLIENT_KEY) && !text.includes("bbbb"), "a key or a header is in the request log");
  const metrics = parsePrometheusText((await send(gateway, "GET", "/metrics", { headers: AUTH })).text);
  const unknown = { endpoint: "unknown", protocol: "unknown", status_class: "4xx" };
  assert.equal(sumOf(metrics, "llm_gateway_requests_total", unknown), 4);
  assert.equal(sumOf(metrics, "llm_gateway_requests_total", { endpoint: "chat", status_class: "4xx" }), 1);
  assert.equal(sumOf(metrics, "llm_gateway_requests_total", { endpoint: "conversations", status_class: "4xx" }), 1);
});

test("a body too slow on a recorded route (408) is its route's one record, with its id, route and client", async (t) => {
  const gateway = await scene(t);
  const answer = await rawExchange(
    gateway,
    `POST /v1/conversations HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${TEAM_KEY}\r\n` +
      `content-type: application/json\r\ncontent-length: 100\r\n\r\n{"items":`,
  );
  assert.match(answer, /^HTTP\/1\.1 408 /);
  const id = requestIdOf(answer);
  // Its response closes once the socket does: wait for its record rather than for a fixed time.
  let found: ListedRecord[] = [];
  for (let tries = 0; tries < 50 && found.length === 0; tries++) {
    found = (await listed(gateway)).records.filter((record) => record.id === id);
    if (found.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.deepEqual(
    found.map((record) => [record.endpoint, record.route, record.status, record.outcome, record.client]),
    [["conversations", "POST /v1/conversations", 408, "rejected", "team-a"]],
  );
  const { records } = await listed(gateway);
  assert.equal(records.length, 1, "no second record (a client_aborted 499) of the same request");
});

test("a flood of malformed requests stays within request_log.max_entries and adds no series per URL", async (t) => {
  const gateway = await scene(t, "  max_entries: 5\n");
  const marker = `flood${Math.random().toString(36).slice(2)}`;
  for (let index = 0; index < 40; index++) {
    // An undecodable %-escape in a route's parameter: Fastify's router refuses it (a 404 names no route: no record).
    const path = index % 2 === 0 ? `/${marker}-${index}` : `/v1/models/${marker}-${index}%E0%A4%A`;
    const request =
      index % 2 === 0
        ? `GET ${path} HTTP/1.1\r\nx-big: ${"b".repeat(20_000)}\r\n\r\n`
        : `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`;
    const answer = await rawExchange(gateway, request);
    assert.match(answer, /^HTTP\/1\.1 4\d\d /);
  }
  const { records, text } = await listed(gateway);
  // The log's own retention holds: the newest five, no more.
  assert.equal(records.length, 5);
  assert.ok(!text.includes(marker), "a refused request's URL is in the request log");
  const exposition = (await send(gateway, "GET", "/metrics", { headers: AUTH })).text;
  assert.ok(!exposition.includes(marker), "a refused request's URL is a label value");
  const metrics = parsePrometheusText(exposition);
  const series = samplesOf(metrics, "llm_gateway_requests_total").filter((sample) => sample.value > 0);
  assert.deepEqual(
    series.map((sample) => [sample.labels.endpoint, sample.labels.protocol, sample.labels.status_class, sample.value]),
    [["unknown", "unknown", "4xx", 40]],
  );
});
