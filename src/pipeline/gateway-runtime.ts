// The live gateway: the current config snapshot (config + catalog + static scores) and the long-lived services
// (HTTP dispatcher, availability book, stats). The snapshot is replaced as a whole, so a future config hot
// reload swaps one reference and in-flight requests finish on the snapshot they started with.
import { Agent, type Dispatcher } from "undici";
import { type Clock, systemClock } from "../clock.ts";
import type { GatewayConfig } from "../config/types.ts";
import { AvailabilityBook } from "../limits/availability.ts";
import { type BudgetLedger, type BudgetScope, rulesFromLimits } from "../limits/budgets.ts";
import { WaitQueue } from "../limits/wait-queue.ts";
import { StatsBook } from "../observability/stats.ts";
import { buildCatalog, type Catalog, type Deployment, type DiscoveredModel } from "../providers/catalog.ts";
import { discoverModels } from "../providers/discovery.ts";
import { planRoute, type RoutePlan, type RouteRequest } from "../router/plan-route.ts";
import { StickySessions } from "../router/sticky-sessions.ts";
import { HealthTracker } from "../scoring/health.ts";
import { boardQuality, type ModelProfile, profileModel, staticScoreFor } from "../scoring/model-profile.ts";
import { explainScore, type ScoreBreakdown, type StaticScore, scoreWithHealth } from "../scoring/score.ts";
import { loadScoringSources, type ScoringSettings, scoringSettings } from "../scoring/scoring-sources.ts";
import { createStateBackend, type StateBackend } from "../state/state-backend.ts";
import type { AttemptRecord, AttemptSkip } from "../upstream/attempt-record.ts";
import { type ForwardOutcome, type ForwardRequest, forward } from "../upstream/forward.ts";

export interface GatewaySnapshot {
  readonly config: GatewayConfig;
  readonly catalog: Catalog;
  /** Static score per deployment index (priority, leaderboard, size, context, adjustments). */
  readonly staticScores: readonly StaticScore[];
  /** What the score knows about each deployment (leaderboard matches, params, context source, adjustments). */
  readonly profiles: readonly ModelProfile[];
  readonly scoring: ScoringSettings;
  /** Budget scopes per deployment index: [provider pool (if it has limits), the deployment itself]. */
  readonly budgetScopes: readonly (readonly BudgetScope[])[];
  /** Discovery warnings and per-provider discovery source, for /health. */
  readonly discovery: ReadonlyMap<string, { source: string; warning?: string | undefined; count: number }>;
}

/** One routing decision, as data: for logs now, and the request log, metrics and dashboard later. */
export interface RouteDecision {
  readonly requestId: string;
  readonly endpoint: string;
  readonly requested: string;
  readonly candidates: readonly { key: string; score: number }[];
  readonly skipped: readonly { key: string; cause: string; reason: string }[];
  readonly attempts: readonly AttemptRecord[];
  readonly attemptSkips: readonly AttemptSkip[];
  readonly status: number;
  readonly servedBy: string | undefined;
  readonly durationMs: number;
}

export interface Logger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
}

export interface RuntimeOptions {
  readonly clock?: Clock;
  readonly dispatcher?: Dispatcher;
  readonly logger?: Logger;
}

export class GatewayRuntime {
  readonly clock: Clock;
  readonly dispatcher: Dispatcher;
  readonly availability: AvailabilityBook;
  readonly stats: StatsBook;
  readonly budgets: BudgetLedger;
  readonly state: StateBackend;
  readonly startedAtMs: number;
  #snapshot: GatewaySnapshot;
  readonly #decisionListeners: ((decision: RouteDecision) => void)[] = [];
  readonly #ownsDispatcher: boolean;
  readonly #queue = new WaitQueue();
  readonly sticky: StickySessions;
  readonly #health = new Map<string, HealthTracker>();

  private constructor(
    snapshot: GatewaySnapshot,
    options: RuntimeOptions,
    dispatcher: Dispatcher,
    ownsDispatcher: boolean,
    availability: AvailabilityBook,
    state: StateBackend,
  ) {
    this.clock = options.clock ?? systemClock;
    this.dispatcher = dispatcher;
    this.#ownsDispatcher = ownsDispatcher;
    this.availability = availability;
    this.stats = new StatsBook();
    this.sticky = new StickySessions(this.clock);
    this.state = state;
    this.budgets = state.ledger;
    this.startedAtMs = this.clock.now();
    this.#snapshot = snapshot;
  }

  static async create(config: GatewayConfig, options: RuntimeOptions = {}): Promise<GatewayRuntime> {
    const dispatcher = options.dispatcher ?? createDispatcher();
    const clock = options.clock ?? systemClock;
    const snapshot = await buildSnapshot(config, dispatcher, clock, options.logger, false);
    const availability = new AvailabilityBook(clock, config.cooldowns);
    const state = await createStateBackend(config.state, availability, clock, options.logger);
    return new GatewayRuntime(snapshot, options, dispatcher, options.dispatcher === undefined, availability, state);
  }

  get snapshot(): GatewaySnapshot {
    return this.#snapshot;
  }

  /** Rebuilds the snapshot (new config, or forced model discovery) and swaps it in. */
  async reload(config: GatewayConfig, options: { isDiscoveryForced?: boolean; logger?: Logger } = {}): Promise<void> {
    const snapshot = await buildSnapshot(
      config,
      this.dispatcher,
      this.clock,
      options.logger,
      options.isDiscoveryForced ?? false,
    );
    this.availability.updateSettings(config.cooldowns);
    this.#snapshot = snapshot;
  }

  /** Static score minus the live health penalty. */
  scoreOf(deployment: Deployment, snapshot: GatewaySnapshot = this.#snapshot): number {
    const staticScore = snapshot.staticScores[deployment.index];
    if (staticScore === undefined) return 0;
    const tracker = this.#health.get(deployment.key);
    if (tracker === undefined) return staticScore.staticTotal;
    return scoreWithHealth(staticScore, tracker.snapshot(), snapshot.scoring.weights);
  }

  /** The score with the leaderboard term from one board (alias like `bigcodebench` covers its variants). */
  scoreOnBoard(deployment: Deployment, board: string, snapshot: GatewaySnapshot = this.#snapshot): number | undefined {
    const profile = snapshot.profiles[deployment.index];
    const staticScore = snapshot.staticScores[deployment.index];
    if (profile === undefined || staticScore === undefined) return undefined;
    const quality = boardQuality(profile, board);
    if (quality === undefined) return undefined;
    const weight = snapshot.scoring.weights.MODEL_LEADERBOARD_SCORE_SCALAR;
    const delta = staticScore.basePriority * (weight * quality - staticScore.leaderboard.weighted);
    return this.scoreOf(deployment, snapshot) + delta;
  }

  /** Every score term of a deployment, for route explanations and /stats. */
  explainScore(deployment: Deployment, snapshot: GatewaySnapshot = this.#snapshot): ScoreBreakdown | undefined {
    const staticScore = snapshot.staticScores[deployment.index];
    if (staticScore === undefined) return undefined;
    const health = this.#health.get(deployment.key)?.snapshot() ?? { samples: 0 };
    return explainScore(staticScore, health, snapshot.scoring.weights);
  }

  /** Candidates that answered a prefill (continuation) request with a 400: asked without prefill from now on. */
  readonly #prefillRejected = new Set<string>();

  rejectsPrefill(deployment: Deployment): boolean {
    return this.#prefillRejected.has(deployment.key);
  }

  markPrefillRejected(deployment: Deployment): void {
    this.#prefillRejected.add(deployment.key);
  }

  /** Feeds the health term: successes and real failures (not rate limits, which cooldowns handle). */
  recordHealth(deployment: Deployment, isSuccess: boolean, latencyMs: number): void {
    let tracker = this.#health.get(deployment.key);
    if (tracker === undefined) {
      const halfLifeMs = this.#snapshot.scoring.healthHalfLifeMs;
      tracker = new HealthTracker(this.clock, halfLifeMs === undefined ? {} : { halfLifeMs });
      this.#health.set(deployment.key, tracker);
    }
    tracker.record(isSuccess, latencyMs);
  }

  plan(request: RouteRequest, snapshot: GatewaySnapshot = this.#snapshot): RoutePlan {
    const nowMs = this.clock.now();
    return planRoute(request, {
      catalog: snapshot.catalog,
      metaModels: snapshot.config.metaModels,
      routing: snapshot.config.routing,
      nowMs,
      score: (deployment) => this.scoreOf(deployment, snapshot),
      scoreOnBoard: (deployment, board) => this.scoreOnBoard(deployment, board, snapshot),
      paramsB: (deployment) => snapshot.profiles[deployment.index]?.params?.valueB,
      availability: (deployment) => this.availability.peek(deployment.key, deployment.provider.settings.name),
      budgetCheck: (deployment) => {
        const settings = deployment.provider.settings;
        const tokens = (request.budgetTokens ?? 0) - (settings.countMaxTokens ? 0 : (request.maxOutputTokens ?? 0));
        const verdict = this.budgets.check(this.scopesOf(deployment, snapshot), { tokens: Math.max(0, tokens) }, nowMs);
        return verdict.isAllowed ? undefined : { reason: verdict.reason, untilMs: verdict.retryAtMs };
      },
    });
  }

  /**
   * Plans a route; when nothing is ready or worth waiting for and `routing.queue_timeout_ms` > 0, queues
   * (arrival order, bounded) until a candidate frees up. Returns the last plan either way.
   */
  async planOrQueue(
    request: RouteRequest,
    signal: AbortSignal,
    snapshot: GatewaySnapshot = this.#snapshot,
  ): Promise<RoutePlan> {
    const plan = this.plan(request, snapshot);
    const { queueTimeoutMs, maxQueued } = snapshot.config.routing;
    if (plan.candidates.length > 0 || plan.waitFor !== undefined || queueTimeoutMs <= 0) return plan;
    let latest = plan;
    const queued = await this.#queue.wait(maxQueued, queueTimeoutMs, signal, () => {
      latest = this.plan(request, snapshot);
      if (latest.candidates.length > 0 || latest.waitFor !== undefined) return { value: latest };
      return { retryInMs: this.soonestAvailableMs(latest) ?? 100 };
    });
    return queued ?? latest;
  }

  get queuedRequests(): number {
    return this.#queue.size;
  }

  scopesOf(deployment: Deployment, snapshot: GatewaySnapshot = this.#snapshot): readonly BudgetScope[] {
    return snapshot.budgetScopes[deployment.index] ?? [];
  }

  forward(
    plan: RoutePlan,
    request: ForwardRequest,
    snapshot: GatewaySnapshot = this.#snapshot,
  ): Promise<ForwardOutcome> {
    return forward(plan, request, {
      dispatcher: this.dispatcher,
      clock: this.clock,
      availability: this.availability,
      stats: this.stats,
      budgets: this.budgets,
      scopesOf: (deployment) => this.scopesOf(deployment, snapshot),
      recordHealth: (deployment, isSuccess, latencyMs) => this.recordHealth(deployment, isSuccess, latencyMs),
      routing: snapshot.config.routing,
      soonestAvailableMs: (routePlan) => this.soonestAvailableMs(routePlan),
    });
  }

  /** Milliseconds until the first candidate of a plan is available again, if any is cooling. */
  soonestAvailableMs(plan: RoutePlan): number | undefined {
    const nowMs = this.clock.now();
    let soonest: number | undefined;
    // A candidate over budget is free of cooldowns but still unusable until its budget frees (`budgetUntilMs`).
    const consider = (deployment: Deployment, budgetUntilMs = nowMs): void => {
      const availability = this.availability.peek(deployment.key, deployment.provider.settings.name);
      const untilMs = Math.max(availability.isAvailable ? nowMs : availability.untilMs, budgetUntilMs);
      // A request larger than a whole budget never fits there: no point in telling the client to come back.
      if (!Number.isFinite(untilMs)) return;
      const waitMs = Math.max(0, untilMs - nowMs);
      if (soonest === undefined || waitMs < soonest) soonest = waitMs;
    };
    for (const candidate of plan.candidates) consider(candidate.deployment);
    for (const skip of plan.skipped) {
      if (skip.cause === "cooldown") consider(skip.deployment);
      else if (skip.cause === "budget") consider(skip.deployment, skip.untilMs ?? nowMs);
    }
    if (plan.waitFor !== undefined) consider(plan.waitFor.deployment);
    return soonest;
  }

  onDecision(listener: (decision: RouteDecision) => void): void {
    this.#decisionListeners.push(listener);
  }

  emitDecision(decision: RouteDecision): void {
    for (const listener of this.#decisionListeners) listener(decision);
  }

  /** Set when shutdown begins: new requests get 503 `service_unavailable`, in-flight ones finish. */
  isShuttingDown = false;
  #isClosed = false;

  /** Idempotent: closing twice is harmless. */
  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    await this.state.close();
    if (this.#ownsDispatcher) await this.dispatcher.close();
  }
}

export function createDispatcher(): Dispatcher {
  // keep-alive to every provider; connections per origin bounded so a burst cannot open thousands of sockets.
  return new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections: 256 });
}

async function buildSnapshot(
  config: GatewayConfig,
  dispatcher: Dispatcher,
  clock: Clock,
  logger: Logger | undefined,
  isDiscoveryForced: boolean,
): Promise<GatewaySnapshot> {
  const discovered = new Map<string, readonly DiscoveredModel[]>();
  const discovery = new Map<string, { source: string; warning?: string | undefined; count: number }>();
  await Promise.all(
    config.providers
      .filter((provider) => provider.models === undefined)
      .map(async (provider) => {
        const result = await discoverModels(provider, {
          settings: config.discovery,
          dispatcher,
          clock,
          isForced: isDiscoveryForced,
        });
        discovered.set(provider.name, result.models);
        discovery.set(provider.name, { source: result.source, warning: result.warning, count: result.models.length });
        if (result.warning !== undefined) logger?.warn({ provider: provider.name }, result.warning);
      }),
  );
  const scoring = scoringSettings(config);
  const sources = await loadScoringSources(scoring);
  const profiles: ModelProfile[] = [];
  const catalog = buildCatalog(config.providers, discovered, (provider, model, discoveredContextTokens) => {
    const profile = profileModel(sources, provider.name, model.id, {
      leaderboardName: model.leaderboardName,
      paramsB: model.paramsB,
      contextTokens: model.contextTokens ?? discoveredContextTokens,
    });
    profiles.push(profile);
    return {
      contextTokens: profile.contextTokens,
      capabilities: {
        tools: model.tools ?? profile.capabilities?.tools,
        vision: model.vision ?? profile.capabilities?.vision,
        jsonSchema: model.jsonSchema ?? profile.capabilities?.jsonSchema,
      },
    };
  });
  const staticScores = catalog.deployments.map((deployment) =>
    staticScoreFor(
      profiles[deployment.index] as ModelProfile,
      { basePriority: deployment.provider.settings.basePriority, priority: deployment.model.priority },
      scoring.weights,
    ),
  );
  return {
    config,
    catalog,
    staticScores,
    profiles,
    scoring,
    budgetScopes: buildBudgetScopes(catalog),
    discovery,
  };
}

function buildBudgetScopes(catalog: Catalog): BudgetScope[][] {
  const providerScopes = new Map<string, BudgetScope | undefined>();
  for (const runtime of catalog.providers) {
    const settings = runtime.settings;
    const { rules, concurrency } = rulesFromLimits(settings.limits);
    providerScopes.set(
      settings.name,
      rules.length === 0 && concurrency === undefined
        ? undefined
        : { id: `provider:${settings.name}`, rules, concurrency, dayReset: settings.dayReset },
    );
  }
  return catalog.deployments.map((deployment) => {
    const { rules, concurrency } = rulesFromLimits(deployment.model.limits);
    const own: BudgetScope = {
      id: `deployment:${deployment.key}`,
      rules,
      concurrency,
      dayReset: deployment.provider.settings.dayReset,
    };
    const pool = providerScopes.get(deployment.provider.settings.name);
    return pool === undefined ? [own] : [pool, own];
  });
}
