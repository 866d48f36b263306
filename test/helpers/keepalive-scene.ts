// The keep-alive tests' scene (`server.stream_keepalive_ms`, docs/streaming.md "Keep-alives"): one mock provider
// `alpha` serving `m`, a gateway with a short keep-alive interval and the request log on, and the raw answer of a
// streamed request (its status, headers and body as written, with the keep-alives in it).
import type { TestContext } from "node:test";
import { type RawResponse, recordsOf, send, useGateway, useMock } from "./e2e.ts";
import type { TestGateway, TestGatewayOptions } from "./gateway.ts";
import type { MockUpstream } from "./mock-upstream.ts";

export const KEEPALIVE_MS = 200;
export const UPSTREAM_MODEL = "alpha-model";
/** An upstream this slow to start makes the gateway commit early and send a few keep-alives first. */
export const SLOW_START_MS = 900;

export interface KeepAliveScene {
  readonly mock: MockUpstream;
  readonly gateway: TestGateway;
}

/**
 * `keepAliveMs` (default KEEPALIVE_MS; 0 turns keep-alives off), `limits` of `m` (e.g. `{ rps: 1 }`), `routing`
 * keys (e.g. `queue_timeout_ms`) and `cache` keys (e.g. `{ enabled: true }`) as YAML flow maps.
 */
export async function keepAliveScene(
  t: TestContext,
  options: {
    keepAliveMs?: number;
    limits?: string;
    routing?: string;
    cache?: string;
    gateway?: TestGatewayOptions;
  } = {},
): Promise<KeepAliveScene> {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
  stream_keepalive_ms: ${options.keepAliveMs ?? KEEPALIVE_MS}
providers:
  - name: alpha
    base_url: ${mock.baseUrl}
    api_key: sk-alpha
    retries: 0
    timeout_ms: 5000
    first_token_timeout_ms: 5000
    models:
      m: { id: ${UPSTREAM_MODEL}${options.limits === undefined ? "" : `, limits: ${options.limits}`} }
routing: ${options.routing ?? "{}"}
cache: ${options.cache ?? "{}"}
request_log:
  enabled: true
`,
    options.gateway,
  );
  return { mock, gateway };
}

/** The SSE comments (`: ...` lines) in a body as written. */
export function commentsOf(text: string): string[] {
  return text.split("\n").filter((line) => line.startsWith(":"));
}

/** The body without its keep-alive comments: what the client's stream would be without them. */
export function withoutKeepAlives(text: string): string {
  return text.split(": keep-alive\n\n").join("");
}

/** POSTs to a door with undici and reads the whole answer. */
export function postRaw(gateway: TestGateway, path: string, body: Record<string, unknown>): Promise<RawResponse> {
  return send(gateway, "POST", path, { body, headers: { "x-api-key": "x" } });
}

/** The request log's newest record of `endpoint`, with the fields the keep-alive tests read. */
export async function newestRecord(
  gateway: TestGateway,
  endpoint: string,
): Promise<{ status: number; outcome?: string; earlyCommitMs?: number; errorCode?: string }> {
  const { records } = await recordsOf(gateway, endpoint);
  const record = records[0];
  if (record === undefined) throw new Error(`no record of ${endpoint}`);
  return record as { status: number; outcome?: string; earlyCommitMs?: number; errorCode?: string };
}
