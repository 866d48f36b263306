// The live gateway: the current config snapshot (snapshot.ts) and the long-lived books that outlive a reload
// (availability, budgets, health, stats, sticky sessions, the wait queue). Planning and forwarding read them;
// only the recorder (recorder.ts) changes them after an attempt. The snapshot is replaced as a whole, so a reload
// swaps one reference and in-flight requests finish on the snapshot they started with.
import { Agent, type Dispatcher } from "undici";
import { type Clock, systemClock } from "../clock.ts";
import type { GatewayConfig } from "../config/types.ts";
import { AvailabilityBook } from "../limits/availability.ts";
import type { BudgetLedger, BudgetScope } from "../limits/budgets.ts";
import { WaitQueue } from "../limits/wait-queue.ts";
import type { Logger } from "../logger.ts";
import type { RecordListener } from "../observability/request-record.ts";
import { StatsBook } from "../observability/stats.ts";
import type { Deployment } from "../providers/catalog.ts";
import { planRoute, type RoutePlan, type RouteRequest } from "../router/plan-route.ts";
import { StickySessions } from "../router/sticky-sessions.ts";
import { LiveScores } from "../scoring/live-scores.ts";
import type { ScoreBreakdown } from "../scoring/score.ts";
import { createStateBackend, type StateBackend } from "../state/state-backend.ts";
import { forward } from "../upstream/failover.ts";
import type { ForwardOutcome, ForwardRequest } from "../upstream/forward-types.ts";
import { Recorder } from "./recorder.ts";
import { buildSnapshot, type GatewaySnapshot } from "./snapshot.ts";

export type { Logger } from "../logger.ts";
export type { GatewaySnapshot } from "./snapshot.ts";

export interface RuntimeOptions {
  readonly clock?: Clock;
  readonly dispatcher?: Dispatcher;
  readonly logger?: Logger;
}

export class GatewayRuntime {
  readonly clock: Clock;
  readonly dispatcher: Dispatcher;
  /** Read by /health and /stats; changed only by the recorder (and the admin reset). */
  readonly availability: AvailabilityBook;
  readonly stats: StatsBook;
  readonly budgets: BudgetLedger;
  readonly state: StateBackend;
  readonly scores: LiveScores;
  readonly recorder: Recorder;
  readonly sticky: StickySessions;
  readonly startedAtMs: number;
  #snapshot: GatewaySnapshot;
  readonly #ownsDispatcher: boolean;
  readonly #queue = new WaitQueue();
  /** Candidates that answered a prefill (continuation) request with a 400: asked without prefill from now on. */
  readonly #prefillRejected = new Set<string>();

  private constructor(
    snapshot: GatewaySnapshot,
    clock: Clock,
    dispatcher: Dispatcher,
    ownsDispatcher: boolean,
    availability: AvailabilityBook,
    state: StateBackend,
  ) {
    this.clock = clock;
    this.dispatcher = dispatcher;
    this.#ownsDispatcher = ownsDispatcher;
    this.availability = availability;
    this.stats = new StatsBook();
    this.sticky = new StickySessions(clock);
    this.state = state;
    this.budgets = state.ledger;
    this.scores = new LiveScores(clock, snapshot.scoring.healthHalfLifeMs);
    this.recorder = new Recorder({
      clock,
      availability,
      budgets: this.budgets,
      stats: this.stats,
      scores: this.scores,
    });
    this.startedAtMs = clock.now();
    this.#snapshot = snapshot;
  }

  static async create(config: GatewayConfig, options: RuntimeOptions = {}): Promise<GatewayRuntime> {
    const dispatcher = options.dispatcher ?? createDispatcher();
    const clock = options.clock ?? systemClock;
    const snapshot = await buildSnapshot(config, dispatcher, clock, options.logger, false);
    const availability = new AvailabilityBook(clock, config.cooldowns);
    const state = await createStateBackend(config.state, availability, clock, options.logger);
    return new GatewayRuntime(snapshot, clock, dispatcher, options.dispatcher === undefined, availability, state);
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
    this.scores.setHalfLife(snapshot.scoring.healthHalfLifeMs);
    this.#snapshot = snapshot;
  }

  /** Static score minus the live health penalty. */
  scoreOf(deployment: Deployment, snapshot: GatewaySnapshot = this.#snapshot): number {
    return this.scores.scoreOf(deployment, snapshot);
  }

  /** Every score term of a deployment, for route explanations and /stats. */
  explainScore(deployment: Deployment, snapshot: GatewaySnapshot = this.#snapshot): ScoreBreakdown | undefined {
    return this.scores.explain(deployment, snapshot);
  }

  rejectsPrefill(deployment: Deployment): boolean {
    return this.#prefillRejected.has(deployment.key);
  }

  markPrefillRejected(deployment: Deployment): void {
    this.#prefillRejected.add(deployment.key);
  }

  plan(request: RouteRequest, snapshot: GatewaySnapshot = this.#snapshot): RoutePlan {
    const nowMs = this.clock.now();
    return planRoute(request, {
      catalog: snapshot.catalog,
      metaModels: snapshot.config.metaModels,
      routing: snapshot.config.routing,
      nowMs,
      score: (deployment) => this.scores.scoreOf(deployment, snapshot),
      scoreOnBoard: (deployment, board) => this.scores.scoreOnBoard(deployment, board, snapshot),
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

  /** Runs the failover executor on a plan; every attempt's end goes to the recorder. */
  forward(
    plan: RoutePlan,
    request: ForwardRequest,
    snapshot: GatewaySnapshot = this.#snapshot,
  ): Promise<ForwardOutcome> {
    return forward(plan, request, {
      dispatcher: this.dispatcher,
      clock: this.clock,
      routing: snapshot.config.routing,
      admit: (deployment, tokens) => this.recorder.admit(deployment, this.scopesOf(deployment, snapshot), tokens),
      attemptEnded: (deployment, report, reservation, isStreamOpen) =>
        this.recorder.attemptEnded(deployment, this.scopesOf(deployment, snapshot), report, reservation, isStreamOpen),
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

  /** Subscribes to finished request records; returns the unsubscribe function. */
  onRecord(listener: RecordListener): () => void {
    return this.recorder.onRecord(listener);
  }

  /** `POST /admin/reset`: forget every cooldown, circuit and budget count. */
  async resetLimits(): Promise<void> {
    this.availability.reset();
    await this.budgets.reset();
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

function createDispatcher(): Dispatcher {
  // keep-alive to every provider; connections per origin bounded so a burst cannot open thousands of sockets.
  return new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connections: 256 });
}
