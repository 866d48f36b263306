// The usual failover scene for e2e tests: the real gateway in front of two scripted mock upstreams, "alpha"
// (preferred, priority 10) and "beta" (the fallback), both serving the public model `m`. Torn down after the test.
import type { TestContext } from "node:test";
import OpenAI from "openai";
import { Agent } from "undici";
import { stringify } from "yaml";
import { startTestGateway, type TestGateway } from "./gateway.ts";
import { closeWhenTestEnds } from "./late-start.ts";
import { type MockUpstream, startMockUpstream } from "./mock-upstream.ts";
import { postJson, type StreamAnswer } from "./sse-client.ts";

export const CHAT_ROUTE = "POST /v1/chat/completions";
export const MODEL = "m";

/** Provider keys as in the YAML file (`timeout_ms`, `first_token_timeout_ms`, ...). */
export type ProviderOverrides = Readonly<Record<string, number | string | boolean>>;

export interface TwoProvidersOptions {
  readonly primary?: ProviderOverrides;
  readonly backup?: ProviderOverrides;
  /** Keys of alpha's model `m` (`prefill`, `limits`, ...), besides its priority. */
  readonly primaryModel?: Readonly<Record<string, unknown>>;
  /** Keys of beta's model `m`. */
  readonly backupModel?: Readonly<Record<string, unknown>>;
  /** `routing:` keys, e.g. `max_stream_duration_ms`. */
  readonly routing?: Readonly<Record<string, number | string>>;
  /** `cooldowns:` keys, e.g. `failure_threshold`. */
  readonly cooldowns?: Readonly<Record<string, number | boolean>>;
}

export interface TwoProviders {
  /** Upstream of provider "alpha", tried first. */
  readonly primary: MockUpstream;
  /** Upstream of provider "beta", the fallback. */
  readonly backup: MockUpstream;
  readonly gateway: TestGateway;
  /** Official SDK client against the gateway, without its own retries. */
  readonly client: OpenAI;
  /** Private connection pool for raw requests, so connection counts are not shared between tests. */
  readonly agent: Agent;
  /** POST /v1/chat/completions with `model: "m"` plus `payload`, raw. */
  postChat(payload: Record<string, unknown>, signal?: AbortSignal): Promise<StreamAnswer>;
}

// Generous defaults so that only the timeout a test is about can fire, even on a loaded machine.
const PROVIDER_DEFAULTS = {
  retries: 0,
  timeout_ms: 5000,
  first_token_timeout_ms: 5000,
  stream_idle_timeout_ms: 5000,
} as const;

export async function startTwoProviders(t: TestContext, options: TwoProvidersOptions = {}): Promise<TwoProviders> {
  const primary = await startMockUpstream();
  const backup = await startMockUpstream();
  const config = {
    ...(options.routing === undefined ? {} : { routing: options.routing }),
    ...(options.cooldowns === undefined ? {} : { cooldowns: options.cooldowns }),
    providers: [
      {
        name: "alpha",
        base_url: primary.baseUrl,
        api_key: "sk-alpha-secret",
        ...PROVIDER_DEFAULTS,
        ...options.primary,
        models: { [MODEL]: { priority: 10, ...options.primaryModel } },
      },
      {
        name: "beta",
        base_url: backup.baseUrl,
        api_key: "sk-beta-secret",
        ...PROVIDER_DEFAULTS,
        ...options.backup,
        models: { [MODEL]: { priority: 1, ...options.backupModel } },
      },
    ],
  };
  // TEST_LOG_LEVEL=debug shows the gateway's log while debugging a test.
  const logLevel = process.env.TEST_LOG_LEVEL;
  const gateway = await startTestGateway(stringify(config), logLevel === undefined ? {} : { logLevel });
  const agent = new Agent();
  const client = new OpenAI({ baseURL: gateway.baseUrl, apiKey: "x", maxRetries: 0 });
  await closeWhenTestEnds(t, async () => {
    // Clients first, then the upstreams (which ends any hanging upstream call), then the gateway: closing the
    // gateway waits for its in-flight requests.
    await agent.destroy();
    await primary.close();
    await backup.close();
    await gateway.close();
  });
  return {
    primary,
    backup,
    gateway,
    client,
    agent,
    postChat: (payload, signal) =>
      postJson(
        `${gateway.baseUrl}/chat/completions`,
        { model: MODEL, messages: [{ role: "user", content: "hi" }], ...payload },
        signal === undefined ? { dispatcher: agent } : { dispatcher: agent, signal },
      ),
  };
}

/** The JSON body of the `index`-th request an upstream received; throws if there is none. */
export function sentBody(upstream: MockUpstream, index = 0): Record<string, unknown> {
  const body = upstream.requests[index]?.body;
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new Error(`upstream request ${index} has no JSON object body`);
  }
  return body as Record<string, unknown>;
}
