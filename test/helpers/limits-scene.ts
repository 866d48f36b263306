// The scene for the limits e2e tests: the real gateway in front of two scripted mock upstreams, "alpha"
// (preferred, priority 100: far enough ahead that a health penalty never reorders them) and "beta" (the
// fallback, priority 1), both serving the public model `m`, with budgets, dialects and cooldown settings given
// per test. /stats and /health are read through typed views.
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { stringify } from "yaml";
import type { Clock } from "../../src/clock.ts";
import { chatRequests, postChat, type RawResponse, send, useGateway, useMock } from "./e2e.ts";
import type { TestGateway } from "./gateway.ts";
import type { MockUpstream } from "./mock-upstream.ts";

export const MODEL = "m";

export interface SceneOptions {
  /** Extra provider keys for alpha (`limits`, `rate_limit_dialect`, `day_reset`, ...). */
  readonly alpha?: Readonly<Record<string, unknown>>;
  /** Extra model keys for alpha's `m` (`limits`, ...). */
  readonly alphaModel?: Readonly<Record<string, unknown>>;
  /** Extra provider keys for beta; `false` leaves beta out. */
  readonly beta?: Readonly<Record<string, unknown>> | false;
  readonly betaModel?: Readonly<Record<string, unknown>>;
  /** Top-level config sections (`routing`, `cooldowns`, `state`, `server`); `routing` is merged. */
  readonly config?: Readonly<Record<string, unknown>>;
  readonly clock?: Clock;
  /** Reuse upstreams (e.g. across a gateway restart). */
  readonly mocks?: { readonly alpha: MockUpstream; readonly beta: MockUpstream };
}

export interface Scene {
  readonly alpha: MockUpstream;
  readonly beta: MockUpstream;
  readonly gateway: TestGateway;
  /** POST /v1/chat/completions with `model: "m"` plus `body`. */
  chat(body?: Record<string, unknown>): Promise<RawResponse>;
  /** Chat requests each upstream received so far. */
  counts(): { alpha: number; beta: number };
  /** The /stats row of `provider/m`. */
  stats(provider: "alpha" | "beta"): Promise<DeploymentView>;
  health(): Promise<HealthView>;
}

export interface WindowView {
  unit: "requests" | "tokens";
  window: "second" | "minute" | "hour" | "day" | "month";
  limit: number;
  used: number;
  remaining: number;
  resets_at: string | null;
  source: "config" | "provider" | "learned";
}

export interface BudgetView {
  scope: string;
  windows: WindowView[];
  in_flight: number;
}

export interface DeploymentView {
  provider: string;
  model: string;
  cooldown: { remaining_ms: number; cause: string; source: string; reason: string } | null;
  circuit: "closed" | "open" | "half_open";
  suspect: boolean;
  attempts_in_flight: number;
  failure_window: { attempts: number; failures: number };
  budgets: BudgetView[];
  successes: number;
  failures: number;
  prompt_token_factor: number;
}

export interface HealthView {
  status: string;
  providers: {
    up: string[];
    cooling: { name: string; until: string; reason: string }[];
    failed: { name: string; reason: string }[];
  };
  deployments: (Omit<DeploymentView, "provider" | "model" | "successes" | "failures" | "prompt_token_factor"> & {
    key: string;
  })[];
}

// Generous timeouts so that only what a test is about can fire, even on a loaded machine; no retries so that
// every upstream request is one the test scripted.
const PROVIDER_DEFAULTS = { retries: 0, timeout_ms: 5000, first_token_timeout_ms: 5000, stream_idle_timeout_ms: 5000 };

export function sceneYaml(
  alpha: MockUpstream,
  beta: MockUpstream | undefined,
  options: Omit<SceneOptions, "clock" | "mocks">,
): string {
  const providers: Record<string, unknown>[] = [
    {
      name: "alpha",
      base_url: alpha.baseUrl,
      api_key: "sk-alpha-secret",
      ...PROVIDER_DEFAULTS,
      ...options.alpha,
      models: { [MODEL]: { id: "alpha-model", priority: 100, ...options.alphaModel } },
    },
  ];
  if (beta !== undefined && options.beta !== false) {
    providers.push({
      name: "beta",
      base_url: beta.baseUrl,
      api_key: "sk-beta-secret",
      ...PROVIDER_DEFAULTS,
      ...options.beta,
      models: { [MODEL]: { id: "beta-model", priority: 1, ...options.betaModel } },
    });
  }
  const { routing, ...rest } = (options.config ?? {}) as { routing?: Record<string, unknown> };
  // No waiting for a better candidate unless a test asks: a skipped candidate must show as a fallback at once.
  return stringify({ providers, routing: { max_wait_for_better_ms: 0, ...routing }, ...rest });
}

export async function startScene(t: TestContext, options: SceneOptions = {}): Promise<Scene> {
  const alpha = options.mocks?.alpha ?? (await useMock(t));
  const beta = options.mocks?.beta ?? (await useMock(t));
  const gateway = await useGateway(
    t,
    sceneYaml(alpha, beta, options),
    options.clock === undefined ? {} : { clock: options.clock },
  );
  return sceneFor(alpha, beta, gateway);
}

export function sceneFor(alpha: MockUpstream, beta: MockUpstream, gateway: TestGateway): Scene {
  return {
    alpha,
    beta,
    gateway,
    chat: (body = {}) => postChat(gateway, { model: MODEL, ...body }),
    counts: () => ({ alpha: chatRequests(alpha).length, beta: chatRequests(beta).length }),
    stats: (provider) => deploymentRow(gateway, provider),
    health: async () => {
      const response = await send(gateway, "GET", "/health");
      return response.json as HealthView;
    },
  };
}

/** A deployment's row of /stats: `provider`'s model `m`. */
export async function deploymentRow(gateway: TestGateway, provider: string): Promise<DeploymentView> {
  const response = await send(gateway, "GET", "/stats");
  assert.equal(response.status, 200, response.text);
  const rows = (response.json as { deployments: DeploymentView[] }).deployments;
  const row = rows.find((candidate) => candidate.provider === provider && candidate.model === MODEL);
  assert.ok(row !== undefined, `no /stats row for ${provider}/${MODEL}`);
  return row;
}

/** The tokens used in `provider`'s model `m`'s configured per-minute token window (`tpm`), from /stats. */
export async function deploymentTpmUsed(gateway: TestGateway, provider: string): Promise<number> {
  const row = await deploymentRow(gateway, provider);
  return windowOf(row, `deployment:${provider}/${MODEL}`, "tokens", "minute").used;
}

/** The window of a deployment's budget scope, e.g. `windowOf(row, "deployment:alpha/m", "requests", "minute")`. */
export function windowOf(
  row: DeploymentView,
  scopeId: string,
  unit: WindowView["unit"],
  window: WindowView["window"],
  source: WindowView["source"] = "config",
): WindowView {
  const scope = row.budgets.find((budget) => budget.scope === scopeId);
  assert.ok(scope !== undefined, `no budget scope ${scopeId}; scopes: ${row.budgets.map((b) => b.scope).join(", ")}`);
  const found = scope.windows.find(
    (candidate) => candidate.unit === unit && candidate.window === window && candidate.source === source,
  );
  assert.ok(found !== undefined, `no ${source} ${unit}/${window} window in ${scopeId}: ${JSON.stringify(scope)}`);
  return found;
}

/** Asserts which provider answered and how many upstream attempts it took. */
export function assertServedBy(response: RawResponse, provider: "alpha" | "beta", attempts = 1): void {
  assert.equal(response.status, 200, response.text);
  assert.equal(response.headers["x-gateway-provider"], provider, `served by ${response.headers["x-gateway-provider"]}`);
  assert.equal(response.headers["x-gateway-attempts"], String(attempts));
}
