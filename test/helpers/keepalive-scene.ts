// The keep-alive tests' scene (`server.stream_keepalive_ms`, docs/streaming.md "Keep-alives"): one mock provider
// `alpha` serving `m`, a gateway with a short keep-alive interval and the request log on, and the raw answer of a
// streamed request (its status, headers and body as written, with the keep-alives in it).
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { type RawResponse, recordsOf, send, useGateway, useMock } from "./e2e.ts";
import type { TestGateway, TestGatewayOptions } from "./gateway.ts";
import type { MockUpstream } from "./mock-upstream.ts";
import { postJson } from "./sse-client.ts";

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
 * keys (e.g. `queue_timeout_ms`), `cache` keys (e.g. `{ enabled: true }`) and `state` keys (e.g. a `redis_url`; absent:
 * the test gateway's own state file) as YAML flow maps.
 */
export async function keepAliveScene(
  t: TestContext,
  options: {
    keepAliveMs?: number;
    limits?: string;
    routing?: string;
    cache?: string;
    state?: string;
    gateway?: TestGatewayOptions;
    /** `server.shutdown_timeout_ms` (the default, 10 s, when absent). */
    shutdownTimeoutMs?: number;
  } = {},
): Promise<KeepAliveScene> {
  const mock = await useMock(t);
  const gateway = await useGateway(
    t,
    `server:
  port: 0
  host: 127.0.0.1
  stream_keepalive_ms: ${options.keepAliveMs ?? KEEPALIVE_MS}
${options.shutdownTimeoutMs === undefined ? "" : `  shutdown_timeout_ms: ${options.shutdownTimeoutMs}\n`}providers:
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
${options.state === undefined ? "" : `state: ${options.state}\n`}`,
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

/** The newest record of `endpoint` once there is one (published as the stream is settled, about when it ends). */
export async function recordOf(
  gateway: TestGateway,
  endpoint: string,
): Promise<Awaited<ReturnType<typeof newestRecord>>> {
  for (let tries = 0; ; tries++) {
    try {
      return await newestRecord(gateway, endpoint);
    } catch (error) {
      if (tries > 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** Reads a 200 answer until it ends, or for at most `forMs`; whether it ended (not cut), and what came. */
export async function readFor(url: string, body: unknown, forMs: number): Promise<{ text: string; isEnded: boolean }> {
  const controller = new AbortController();
  const answer = await postJson(url, body, { signal: controller.signal });
  assert.equal(answer.statusCode, 200);
  const timer = setTimeout(() => controller.abort(), forMs);
  let text = "";
  try {
    for await (const bytes of answer.body) text += Buffer.from(bytes as Uint8Array).toString();
    return { text, isEnded: true };
  } catch {
    return { text, isEnded: false };
  } finally {
    clearTimeout(timer);
  }
}

/** The Responses and Messages doors' streamed requests, and the in-stream 500 each ends a failed stream with. */
export const STREAM_DOORS = [
  {
    path: "/v1/responses",
    endpoint: "responses",
    body: { model: "m", stream: true, input: "hi" },
    error: /event: error\ndata: \{"type":"error"[^\n]*"code":"internal_error"[^\n]*\n\nevent: response\.failed\n/,
  },
  {
    path: "/v1/messages",
    endpoint: "messages",
    body: { model: "m", max_tokens: 50, stream: true, messages: [{ role: "user", content: "hi" }] },
    error: /event: error\ndata: \{"type":"error","error":\{"type":"api_error"/,
  },
] as const;
