// Shared plumbing for the e2e tests: start mocks and gateways that close themselves when the test ends, talk to
// the gateway with the official OpenAI SDK or with raw undici when exact bytes and headers matter.
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import type { TestContext } from "node:test";
import OpenAI from "openai";
import { request } from "undici";
import { startTestGateway, type TestGateway, type TestGatewayOptions } from "./gateway.ts";
import { closeWhenTestEnds } from "./late-start.ts";
import {
  chatCompletion,
  type MockModel,
  type MockUpstream,
  type RecordedRequest,
  startMockUpstream,
} from "./mock-upstream.ts";

export const CHAT_ROUTE = "POST /v1/chat/completions";
export const MODELS_ROUTE = "GET /v1/models";

/** A mock upstream closed when the test ends. */
export async function useMock(t: TestContext, options: { models?: MockModel[] } = {}): Promise<MockUpstream> {
  const mock = await startMockUpstream(options);
  await closeWhenTestEnds(t, () => mock.close());
  return mock;
}

/** The real gateway, from YAML, closed when the test ends. */
export async function useGateway(
  t: TestContext,
  yamlText: string,
  options: TestGatewayOptions = {},
): Promise<TestGateway> {
  const gateway = await startTestGateway(yamlText, options);
  await closeWhenTestEnds(t, () => gateway.close());
  return gateway;
}

/** A log stream for `useGateway`'s `logStream` that keeps every line written, to assert what the log holds. */
export function logCollector(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString("utf8"));
      done();
    },
  });
  return { lines, stream };
}

/** The official SDK, without its own retries so that every gateway answer is seen as it is. */
export function openAiClient(gateway: TestGateway, apiKey = "x"): OpenAI {
  return new OpenAI({ baseURL: gateway.baseUrl, apiKey, maxRetries: 0 });
}

/** What a promise rejected with, asserted to be the openai SDK's 400 (`BadRequestError`). */
export async function badRequest(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.BadRequestError>> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof OpenAI.BadRequestError, `expected a 400, got ${String(error)}`);
  return error;
}

/** The upstream id behind the public name `m` in `oneProviderScene`: a vendor-style id, so tests see the mapping. */
export const VENDOR_MODEL_ID = "vendor/m-instruct";

/**
 * One mock provider `alpha` serving `m` (as VENDOR_MODEL_ID unless `model.id` says otherwise; `model.keys` are
 * more keys of its entry, e.g. `, reasoning: true`), the gateway in front of it, and an OpenAI client. With
 * `clientKey`, the gateway asks for that client key (`server.api_keys`) and the client sends it.
 */
export async function oneProviderScene(
  t: TestContext,
  model: { readonly id?: string; readonly keys?: string } = {},
  clientKey?: string,
): Promise<{ mock: MockUpstream; gateway: TestGateway; client: OpenAI }> {
  const mock = await useMock(t);
  const server = clientKey === undefined ? "" : `server:\n  port: 0\n  host: 127.0.0.1\n  api_keys: [${clientKey}]\n`;
  const gateway = await useGateway(t, `${server}${oneProviderYaml(mock, model)}`);
  return { mock, gateway, client: openAiClient(gateway, clientKey) };
}

/** `oneProviderScene`'s providers: `alpha` serving `m` as VENDOR_MODEL_ID (or `model.id`), with `model.keys`. */
export function oneProviderYaml(
  mock: MockUpstream,
  model: { readonly id?: string; readonly keys?: string } = {},
): string {
  return `providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    models:
      m: { id: ${model.id ?? VENDOR_MODEL_ID}${model.keys ?? ""} }
`;
}

/** `oneProviderYaml` with the gateway's state (budgets, kept answers) in the embedded state file at `statePath`. */
export function stateFileYaml(mock: MockUpstream, statePath: string): string {
  return `${oneProviderYaml(mock)}state:\n  path: ${JSON.stringify(statePath)}\n`;
}

export interface TwoProviderSceneOptions {
  /** The public model both providers serve. */
  readonly model: string;
  /** Provider `first`'s entry for `model`, a YAML flow map (e.g. `{ id: tts-first }`). */
  readonly firstModel: string;
  /** Provider `second`'s entry for `model`. */
  readonly secondModel: string;
  /** More keys of provider `first`, YAML at the provider's level (e.g. `retries: 0\nbody:\n  defaults: {...}`). */
  readonly firstKeys?: string;
  /** Provider `first` also serves a chat model `chatty`, for the "not this kind of model" cases (default true). */
  readonly hasChatModel?: boolean;
  /** The request log is on (default true). */
  readonly keepsRequestLog?: boolean;
  /** Top-level YAML after the rest (e.g. `cache:\n  enabled: true\n`). */
  readonly extra?: string;
}

/**
 * The endpoint doors' failover scene: two mock providers, `first` (tried first) and `second`, both serving
 * `options.model`, the gateway in front of them and an OpenAI client.
 */
export async function twoProviderScene(
  t: TestContext,
  options: TwoProviderSceneOptions,
): Promise<{ first: MockUpstream; second: MockUpstream; gateway: TestGateway; client: OpenAI }> {
  const first = await useMock(t);
  const second = await useMock(t);
  const firstKeys = (options.firstKeys ?? "")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => `    ${line}\n`)
    .join("");
  const gateway = await useGateway(
    t,
    `providers:
  - name: first
    base_url: ${first.baseUrl}
    api_key: sk-first-key
${firstKeys}    models:
      ${options.model}: ${options.firstModel}
${options.hasChatModel === false ? "" : "      chatty: { id: chat-model }\n"}  - name: second
    base_url: ${second.baseUrl}
    api_key: sk-second-key
    models:
      ${options.model}: ${options.secondModel}
${options.keepsRequestLog === false ? "" : "request_log:\n  enabled: true\n"}${options.extra ?? ""}`,
  );
  return { first, second, gateway, client: openAiClient(gateway) };
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly text: string;
  /** The body parsed as JSON; undefined when it is not JSON. */
  readonly json: unknown;
}

/** One request with undici, the body read in full; `body` objects are sent as JSON. */
export async function send(
  gateway: TestGateway,
  method: "GET" | "HEAD" | "POST" | "DELETE" | "OPTIONS",
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  const response = await request(`${gateway.url}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await response.body.text();
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.statusCode, headers: flat, text, json };
}

export function postChat(
  gateway: TestGateway,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  return send(gateway, "POST", "/v1/chat/completions", { body: { messages: HELLO, ...body }, headers });
}

export const HELLO: { role: "user"; content: string }[] = [{ role: "user", content: "Say hello" }];

export interface OpenAiError {
  message: string;
  type: string;
  code: string | null;
  param: string | null;
  attempts?: { provider: string; model: string; status?: number; reason: string }[];
}

/** Asserts the OpenAI error shape and returns its `error` object. */
export function errorOf(response: RawResponse): OpenAiError {
  assert.match(response.headers["content-type"] ?? "", /^application\/json/);
  const body = response.json as { error?: OpenAiError } | undefined;
  assert.ok(body?.error !== undefined, `expected an OpenAI error body, got ${response.text}`);
  assert.equal(typeof body.error.message, "string");
  assert.equal(typeof body.error.type, "string");
  assert.ok("param" in body.error, "error.param must be present (null when not about a field)");
  assert.ok("code" in body.error, "error.code must be present");
  assertNoStackTrace(response.text);
  return body.error;
}

export function assertNoStackTrace(text: string): void {
  assert.doesNotMatch(text, /\n\s+at |\bat [\w.<>]+ \(|node:internal|\.ts:\d+/, `stack trace leaked: ${text}`);
}

/** Asserts that a secret occurs nowhere in a response, body or headers. */
export function assertNoSecret(response: RawResponse, secret: string): void {
  assert.ok(!response.text.includes(secret), `secret leaked in the body: ${response.text}`);
  for (const [name, value] of Object.entries(response.headers)) {
    assert.ok(!value.includes(secret), `secret leaked in header ${name}`);
  }
}

/** Chat requests a mock received (discovery's GET /models left out). */
export function chatRequests(mock: MockUpstream): RecordedRequest[] {
  return mock.requests.filter((recorded) => recorded.method === "POST" && recorded.path === "/v1/chat/completions");
}

/** The contents of the messages a recorded chat request sent. */
export function sentContentsOf(recorded: RecordedRequest | undefined): unknown[] {
  const messages = ((recorded?.body ?? {}) as { messages?: { content: unknown }[] }).messages ?? [];
  return messages.map((message) => message.content);
}

/** `count` words: ~`count` tokens by the gateway's estimate (token-estimate.ts). */
export function words(word: string, count: number): string {
  return `${word} `.repeat(count).trim();
}

/** Every chat request the mock receives is answered with `content`, under the model it asked for. */
export function serveEveryChat(mock: MockUpstream, content = "Served."): void {
  mock.setDefault(CHAT_ROUTE, (recorded: RecordedRequest) => ({
    kind: "json",
    body: chatCompletion(content, (recorded.body as { model: string }).model),
  }));
}

/** The upstream model id a recorded request asked for. */
export function modelOf(recorded: RecordedRequest | undefined): unknown {
  return (recorded?.body as { model?: unknown } | undefined)?.model;
}

export interface StatsRow {
  provider: string;
  model: string;
  upstream_id: string;
  kind: string;
  cooldown: { remaining_ms: number; cause: string; source: string; reason: string } | null;
  circuit: string;
  successes: number;
  failures: number;
  tokens_in: number;
  tokens_out: number;
  latency_ms: { min: number; mean: number; max: number } | null;
  refused_features: { feature: string; reason: string; until: string }[];
}

/** GET /stats, one row per deployment, by `provider/model`. */
export async function statsOf(
  gateway: TestGateway,
  headers: Record<string, string> = {},
): Promise<Map<string, StatsRow>> {
  const response = await send(gateway, "GET", "/stats", { headers });
  assert.equal(response.status, 200, response.text);
  const rows = (response.json as { deployments: StatsRow[] }).deployments;
  return new Map(rows.map((row) => [`${row.provider}/${row.model}`, row]));
}

export function rowOf(stats: Map<string, StatsRow>, key: string): StatsRow {
  const row = stats.get(key);
  assert.ok(row !== undefined, `no /stats row for ${key}; rows: ${[...stats.keys()].join(", ")}`);
  return row;
}

/**
 * A model of a served kind as clients see it: `/v1/models` lists it with its kind and routes, and the route
 * explanation for that kind plans it on exactly these providers.
 */
export async function assertServedAs(
  gateway: TestGateway,
  model: string,
  expected: { readonly kind: string; readonly endpoints: readonly string[]; readonly providers: readonly string[] },
): Promise<void> {
  const models = (await send(gateway, "GET", "/v1/models")).json as {
    data: { id: string; kind: string; endpoints: string[] }[];
  };
  const listed = models.data.find((entry) => entry.id === model);
  assert.equal(listed?.kind, expected.kind);
  assert.deepEqual(listed?.endpoints, expected.endpoints);
  const route = await send(
    gateway,
    "GET",
    `/v1/gateway/route?model=${encodeURIComponent(model)}&kind=${expected.kind}`,
  );
  assert.equal(route.status, 200, route.text);
  const plan = route.json as { candidates: { provider: string }[] };
  assert.deepEqual(plan.candidates.map((candidate) => candidate.provider).sort(), [...expected.providers].sort());
}

/** A request log record as `/v1/gateway/requests` lists it: the fields the door tests read. */
export interface ListedRecord {
  endpoint: string;
  clientProtocol?: string;
  status: number;
  outcome?: string;
  isStream?: boolean;
  tokensIn?: number;
  tokensOut?: number;
  isUsageEstimated?: boolean;
  attempts: { provider: string; outcome: string; reason?: string }[];
  content?: { request?: unknown; responseText?: string };
}

/** The latest 20 records of one endpoint, and the listing's raw text (to search it for what must not be there). */
export async function recordsOf(
  gateway: TestGateway,
  endpoint: string,
): Promise<{ records: ListedRecord[]; text: string }> {
  const listed = await send(gateway, "GET", "/v1/gateway/requests?limit=20");
  const records = (listed.json as { data: ListedRecord[] }).data.filter((record) => record.endpoint === endpoint);
  return { records, text: listed.text };
}

/**
 * The first record at `endpoint` of a request that failed over: the first provider answered 429, the second served
 * it, through the front door `clientProtocol`. Returns it with the request log's text, for the caller's checks.
 */
export async function failedOverRecord(
  gateway: TestGateway,
  endpoint: string,
  clientProtocol: string,
): Promise<{ record: ListedRecord; text: string }> {
  const { records, text } = await recordsOf(gateway, endpoint);
  const record = records[0];
  assert.ok(record, `no record of the ${endpoint} request`);
  assert.equal(record.clientProtocol, clientProtocol);
  assert.deepEqual(
    record.attempts.map((attempt) => [attempt.provider, attempt.outcome]),
    [
      ["first", "rate_limited"],
      ["second", "success"],
    ],
  );
  return { record, text };
}
