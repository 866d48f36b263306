// What the observers need to know about the gateway right now, besides finished records: which deployments exist
// (the only label values metrics may use), their cooldowns, circuits and budgets, the queue. The composition
// root implements this over the pipeline's live books; observability never imports them.

export type LiveCircuitState = "closed" | "open" | "half_open";

export interface LiveBudgetWindow {
  /** Budget scope id from the config: `provider:NAME` or `deployment:PROVIDER/MODEL`. */
  readonly scope: string;
  /** `requests` or `tokens`. */
  readonly unit: string;
  /** Window name: `second`, `minute`, `hour`, `day`, `month`, ... */
  readonly window: string;
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  readonly resetsAtMs?: number | undefined;
  /** `config`, `provider` (a remaining header) or `learned` (inferred from 429s). */
  readonly source?: string;
  /** `sliding`, `fixed` or `bucket`. */
  readonly algorithm?: string;
  /** For a learned limit: what it was learned from. */
  readonly evidence?: string | undefined;
  /** A limit inferred from our own sends: when it lapses unless a 429 confirms it first. */
  readonly lapsesAtMs?: number | undefined;
  /** An inferred limit a later 429 lowered: the limit it climbs back to, and when its next step is due. */
  readonly recoversTo?: number | undefined;
  readonly nextStepAtMs?: number | undefined;
}

export interface LiveCooldown {
  /** rate_limited, daily_quota, credits_exhausted, capacity, budget_exhausted, invalid_key, model_unavailable, circuit_open. */
  readonly cause: string;
  readonly untilMs: number;
  readonly reason: string;
  /** `provider` (a header or body said how long) or `guessed` (backoff). */
  readonly source: string;
}

export interface LiveDeployment {
  readonly deploymentKey: string;
  readonly provider: string;
  /** Upstream model id. */
  readonly model: string;
  /** The name clients use. */
  readonly publicName: string;
  readonly kind: string;
  readonly score: number;
  /** Score terms by name (priority, leaderboard, params, context, adjustment, health_penalty). */
  readonly scoreTerms?: Readonly<Record<string, number>> | undefined;
  readonly cooldown?: LiveCooldown | undefined;
  readonly circuit: LiveCircuitState;
  /**
   * Circuit closed, but the latest evidence is a recent failure: one attempt at a time, a last resort while one is
   * in flight (docs/routing.md "Recovery").
   */
  readonly isSuspect?: boolean;
  /** The provider's key was refused (401/403) or its credits are gone. */
  readonly isKeyInvalid: boolean;
  /**
   * The endpoint paths its provider has no route for, learned from a 405 or a "no such path" 404 (docs/routing.md
   * "Unserved endpoints"): requests to them skip it, its other endpoints do not.
   */
  readonly unservedPaths?: readonly string[];
  readonly budgets: readonly LiveBudgetWindow[];
  readonly inFlight: number;
}

/**
 * The names label values may take (everything else becomes `other`): they come from the config and discovery,
 * never from a client. The same object until the config changes, so observers may cache what they derive.
 */
export interface KnownNames {
  /** Every model name a client may ask for: public names, meta models, `auto`. */
  readonly models: ReadonlySet<string>;
  readonly providers: ReadonlySet<string>;
  /** Upstream model ids. */
  readonly upstreamModels: ReadonlySet<string>;
}

/** A client with budgets of its own (`server.api_keys` entries `{ key, name, limits }`). */
export interface LiveClient {
  readonly name: string;
  readonly budgets: readonly LiveBudgetWindow[];
  readonly inFlight: number;
}

export interface LiveStateSource {
  nowMs(): number;
  deployments(): readonly LiveDeployment[];
  /** Clients with budgets of their own, and how much of them is used. */
  clients(): readonly LiveClient[];
  knownNames(): KnownNames;
  /** Requests waiting in the queue for a free candidate. */
  queueDepth(): number;
  /** Config reloads (and forced model refreshes) since start. */
  configReloads(): number;
  /**
   * The state store: degraded (serving anything from local state), and how many providers' budgets a Redis Cluster
   * serves locally because their slot does not answer. Absent: nothing to report (tests, no runtime yet).
   */
  stateHealth?(): { readonly isDegraded: boolean; readonly localProviders: number };
  /**
   * The budget writes kept for a Redis Cluster master's return that the bound dropped, keyed `provider:TAG` (a
   * provider's scopes, by hash tag) or `client:NAME` (a client's own budget).
   */
  keptWritesDropped?(): ReadonlyMap<string, number>;
}

/** All cooldown causes, so that a gauge shows 0 instead of vanishing when none is active. */
export { COOLDOWN_CAUSES } from "../cooldown-causes.ts";

/** A live state for tests and for a gateway that has nothing to report yet. */
export function staticLiveState(
  deployments: readonly LiveDeployment[],
  options: { modelNames?: readonly string[]; nowMs?: () => number } = {},
): LiveStateSource {
  const names: KnownNames = {
    models: new Set(options.modelNames ?? deployments.map((deployment) => deployment.publicName)),
    providers: new Set(deployments.map((deployment) => deployment.provider)),
    upstreamModels: new Set(deployments.map((deployment) => deployment.model)),
  };
  return {
    nowMs: options.nowMs ?? (() => Date.now()),
    deployments: () => deployments,
    clients: () => [],
    knownNames: () => names,
    queueDepth: () => 0,
    configReloads: () => 0,
  };
}
