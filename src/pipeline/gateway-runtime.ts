// The live gateway: the current config snapshot (snapshot.ts) and the long-lived books that outlive a reload
// (availability, budgets, health, stats, sticky sessions, the wait queue). Planning and forwarding read them;
// only the recorder (recorder.ts) changes them after an attempt. The snapshot is replaced as a whole, so a reload
// swaps one reference and in-flight requests finish on the snapshot they started with.

import type { Dispatcher } from "undici";
import { type Clock, systemClock } from "../clock.ts";
import { ConfigError, formatIssue } from "../config/config-error.ts";
import type { GatewayConfig } from "../config/types.ts";
import type { AvailabilityBook } from "../limits/availability.ts";
import type { BudgetLedger, BudgetScope } from "../limits/budgets.ts";
import { InFlightGates } from "../limits/in-flight-gate.ts";
import type { PromptCalibration } from "../limits/prompt-calibration.ts";
import type { RefusedFeatures } from "../limits/refused-features.ts";
import type { Logger } from "../logger.ts";
import type { RecordListener } from "../observability/request-record.ts";
import { StatsBook } from "../observability/stats.ts";
import type { Deployment } from "../providers/catalog.ts";
import { planRoute, type RoutePlan } from "../router/plan-route.ts";
import { soonestAvailableMs } from "../router/soonest-available.ts";
import { StickySessions } from "../router/sticky-sessions.ts";
import { LiveScores } from "../scoring/live-scores.ts";
import type { ScoreBreakdown } from "../scoring/score.ts";
import type { StateBackend } from "../state/state-backend.ts";
import type { TraceSampler } from "../trace-context.ts";
import { forward } from "../upstream/failover.ts";
import type { FailoverServices, ForwardOutcome, ForwardRequest } from "../upstream/forward-types.ts";
import { type AnswerStore, answerStoreFor } from "./answer-cache.ts";
import { hasOutdatedCache } from "./answer-fingerprint.ts";
import { BackgroundRuns } from "./background-runs.ts";
import { forgetChanged, UpstreamIdentities } from "./changed-upstreams.ts";
import { type ClientRouteRequest, queueKey, withClientRules } from "./client-rules.ts";
import { failoverServicesOf } from "./failover-services.ts";
import { GatewaySecrets } from "./logged-secrets.ts";
import { OpenRequests } from "./open-requests.ts";
import { budgetCheckOf, routerContextOf } from "./plan-checks.ts";
import { Recorder } from "./recorder.ts";
import type { ConfigLoader, RefusedReload, ReloadResult } from "./reload-types.ts";
import { type PlannedRoute, RouteQueues } from "./route-queue.ts";
import { buildSnapshot, type GatewaySnapshot } from "./snapshot.ts";
import { openStateBooks, pruneUnconfiguredScopes, type StateBooks } from "./state-books.ts";
import { createUpstreamAgent } from "./undici-agent.ts";

export type { Logger } from "../logger.ts";
export type { ConfigLoader, ReloadResult } from "./reload-types.ts";
export type { PlannedRoute } from "./route-queue.ts";
export type { GatewaySnapshot } from "./snapshot.ts";

export interface RuntimeOptions {
  readonly clock?: Clock;
  readonly dispatcher?: Dispatcher;
  readonly logger?: Logger;
  /** Only read the embedded state file (`llm-gateway route` beside a serving gateway): state-books.ts. */
  readonly isStateReadOnly?: boolean;
}

export class GatewayRuntime {
  readonly clock: Clock;
  readonly dispatcher: Dispatcher;
  /** Read by /health and /stats; changed only by the recorder (and the admin reset). */
  readonly availability: AvailabilityBook;
  readonly stats: StatsBook;
  readonly budgets: BudgetLedger;
  /** Prompt estimates scaled per deployment from the usage its provider reported; learned by the recorder. */
  readonly promptCalibration: PromptCalibration;
  /** What each deployment refused as not supported (tools, images, a parameter); learned by the recorder. */
  readonly refusedFeatures: RefusedFeatures;
  readonly state: StateBackend;
  readonly scores: LiveScores;
  readonly recorder: Recorder;
  readonly sticky: StickySessions;
  /** `cache.enabled`: answers given again to the same request (answer-cache.ts); a reload may empty it. */
  readonly answers: AnswerStore;
  /** `providers[].max_in_flight`: upstream requests in flight per provider, and those waiting for a slot. */
  readonly inFlight = new InFlightGates();
  /** The requests the server has open: what an exit that cannot wait for them ends (open-requests.ts). */
  readonly openRequests = new OpenRequests();
  /** Responses requests with `background: true` running in this process (background-runs.ts). */
  readonly backgroundRuns = new BackgroundRuns();
  /** The one redaction of all the gateway shows, logs, records, exports or stores (logged-secrets.ts). */
  readonly secrets = new GatewaySecrets(() => this.#snapshot);
  /** Set when spans are exported (cli/observers.ts): requests without a `traceparent` then start a trace. */
  traceSampler: TraceSampler | undefined;
  readonly startedAtMs: number;
  #snapshot: GatewaySnapshot;
  /** When the serving config was loaded, and a hash of it (keys hashed again), for /health. */
  #configLoadedAtMs: number;
  #configHash: string;
  /** The latest reload refused since then (a broken edit with file watching shows only in the log otherwise). */
  #refused: RefusedReload | undefined;
  #configLoader: ConfigLoader | undefined;
  /** Reloads and rebuilds, in turn (#inTurn). */
  #reloadChain: Promise<unknown> = Promise.resolve();
  #logger: Logger | undefined;
  #reloads = 0;
  readonly #ownsDispatcher: boolean;
  /** One arrival-order queue per requested model and client rules (`routing.queue_timeout_ms`); dropped when empty. */
  readonly #routeQueues = new RouteQueues();
  /** Candidates that answered a prefill (continuation) request with a 400: asked without prefill from now on. */
  readonly #prefillRejected = new Set<string>();
  /** The upstream (URL, key, model id) each name points at: what the books learned under it is about that one. */
  readonly #upstreams: UpstreamIdentities;
  /** The snapshot each deployment belongs to: its budget scopes are that snapshot's (a request may switch, forward). */
  readonly #snapshotOf = new WeakMap<Deployment, GatewaySnapshot>();
  /** Each snapshot's failover services, made at its first forwarded request (failover-services.ts). */
  readonly #failoverServices = new WeakMap<GatewaySnapshot, FailoverServices>();

  private constructor(
    snapshot: GatewaySnapshot,
    clock: Clock,
    dispatcher: Dispatcher,
    ownsDispatcher: boolean,
    { availability, state, promptCalibration, refusedFeatures }: StateBooks,
  ) {
    this.clock = clock;
    this.dispatcher = dispatcher;
    this.#ownsDispatcher = ownsDispatcher;
    this.availability = availability;
    this.stats = new StatsBook();
    this.sticky = new StickySessions(clock);
    this.state = state;
    this.budgets = state.ledger;
    this.answers = answerStoreFor(state, snapshot.config.cache.enabled, () => this.#logger);
    this.promptCalibration = promptCalibration;
    this.refusedFeatures = refusedFeatures;
    this.#upstreams = new UpstreamIdentities(snapshot);
    this.scores = new LiveScores(clock, snapshot.scoring.healthHalfLifeMs, snapshot.config.cooldowns.failureWindowMs);
    this.recorder = new Recorder({
      clock,
      availability,
      budgets: this.budgets,
      stats: this.stats,
      scores: this.scores,
      promptCalibration,
      refusedFeatures: this.refusedFeatures,
      isKnownAs: (deployment) => this.#upstreams.isKnownAs(deployment),
      unservedEndpointMs: () => this.#snapshot.config.cooldowns.unservedEndpointMs,
    });
    this.startedAtMs = clock.now();
    this.#snapshot = snapshot;
    for (const deployment of snapshot.catalog.deployments) this.#snapshotOf.set(deployment, snapshot);
    this.#configLoadedAtMs = clock.now();
    this.#configHash = snapshot.configHash;
  }

  static async create(config: GatewayConfig, options: RuntimeOptions = {}): Promise<GatewayRuntime> {
    const dispatcher = options.dispatcher ?? createUpstreamAgent();
    const clock = options.clock ?? systemClock;
    const snapshot = await buildSnapshot(config, dispatcher, clock, options.logger, false);
    const books = await openStateBooks(config, clock, options.logger, options.isStateReadOnly === true);
    const runtime = new GatewayRuntime(snapshot, clock, dispatcher, options.dispatcher === undefined, books);
    pruneUnconfiguredScopes(books.state, snapshot, clock.now());
    runtime.#logger = options.logger;
    return runtime;
  }

  /** When the serving config was loaded and its hash (`/health`). */
  get configInfo(): { readonly loadedAtMs: number; readonly hash: string; readonly refused?: RefusedReload } {
    const served = { loadedAtMs: this.#configLoadedAtMs, hash: this.#configHash };
    return this.#refused === undefined ? served : { ...served, refused: this.#refused };
  }

  /** Where `reloadFromSource` (SIGHUP, file changes, POST /admin/reload) gets the config from. */
  setConfigLoader(loader: ConfigLoader): void {
    this.#configLoader = loader;
  }

  /** Loads the config again, swapped in when valid; else the old one serves on, every problem logged and returned. */
  reloadFromSource(trigger: string): Promise<ReloadResult> {
    return this.#inTurn(async (): Promise<ReloadResult> => {
      const loader = this.#configLoader;
      if (loader === undefined)
        return { isApplied: false, problems: ["this gateway was started without a config source"] };
      let config: GatewayConfig;
      try {
        config = await loader();
        await this.#swap(config, false);
      } catch (error) {
        const problems =
          error instanceof ConfigError
            ? error.issues.map(formatIssue)
            : [error instanceof Error ? error.message : String(error)];
        this.#logger?.warn(
          { trigger, problems },
          `config reload refused (${problems.length} problem${problems.length === 1 ? "" : "s"}); the previous config keeps serving:\n${problems.join("\n")}`,
        );
        this.#refused = { atMs: this.clock.now(), problems };
        return { isApplied: false, problems };
      }
      this.#refused = undefined;
      const { hash, loadedAtMs } = this.configInfo;
      this.#logger?.info(
        { trigger, hash, providers: config.providers.map((provider) => provider.name) },
        "config reloaded",
      );
      return { isApplied: true, hash, loadedAtMs };
    });
  }

  /**
   * Builds the serving config's snapshot again and swaps it in (POST /admin/models/refresh forces model discovery;
   * the leaderboard refresh re-scores). In turn with reloads: one that read the config before a reload was applied
   * and swapped after it (a slow discovery) put the old config back, /health naming it again.
   */
  rebuild(options: { readonly isDiscoveryForced?: boolean } = {}): Promise<void> {
    return this.#inTurn(() => this.#swap(this.#snapshot.config, options.isDiscoveryForced ?? false));
  }

  /** Reloads and rebuilds run one after another: two at once must not interleave their swaps. */
  #inTurn<T>(run: () => Promise<T>): Promise<T> {
    const result = this.#reloadChain.then(run, run);
    this.#reloadChain = result.catch(() => undefined);
    return result;
  }

  get snapshot(): GatewaySnapshot {
    return this.#snapshot;
  }

  /** Config reloads and forced model refreshes applied since start (`llm_gateway_config_reloads_total`). */
  get reloads(): number {
    return this.#reloads;
  }

  /**
   * Builds the snapshot of `config` and swaps it in, atomically: requests and streams in flight finish on the
   * snapshot they started with. What the books learned (budgets, cooldowns, circuits, health, sticky sessions)
   * carries over for every provider+model that still goes to the same upstream with the same key; a deployment
   * pointed elsewhere starts afresh, and a client left without budgets loses its counters (changed-upstreams.ts).
   * Called in turn only (#inTurn).
   */
  async #swap(config: GatewayConfig, isDiscoveryForced: boolean): Promise<void> {
    const previous = this.#snapshot;
    const warned = new Set(previous.catalog.ruleWarnings);
    const snapshot = await buildSnapshot(config, this.dispatcher, this.clock, this.#logger, isDiscoveryForced, warned);
    forgetChanged(this.#upstreams.apply(snapshot), previous, snapshot, this);
    this.availability.setProviderKeys(config.providers);
    this.availability.updateSettings(config.cooldowns);
    this.refusedFeatures.setLifetime(config.cooldowns.unsupportedFeatureMs);
    for (const provider of config.providers) this.inFlight.resize(provider.name, provider.maxInFlight);
    this.scores.setHalfLife(snapshot.scoring.healthHalfLifeMs);
    this.scores.setFailureMemory(config.cooldowns.failureWindowMs);
    this.#snapshot = snapshot;
    // Unreachable answers' memory is freed now, not per request or as they age; shared rows stay (reset).
    if (hasOutdatedCache(previous, snapshot)) this.answers.reset();
    this.secrets.retire(previous);
    for (const deployment of snapshot.catalog.deployments) this.#snapshotOf.set(deployment, snapshot);
    pruneUnconfiguredScopes(this.state, snapshot, this.clock.now());
    this.#reloads += 1;
    // A forced model refresh keeps the config, but reads the adjustments file again: its hash says if that changed.
    if (previous.config !== config || snapshot.configHash !== this.#configHash) {
      this.#configLoadedAtMs = this.clock.now();
      this.#configHash = snapshot.configHash;
    }
  }

  /** Whether the serving config has this deployment unchanged (URL, key, model id): else it gets no new attempt. */
  isServing(deployment: Deployment): boolean {
    return this.#upstreams.isServing(deployment);
  }

  /** Static score minus the live health penalty. */
  scoreOf(deployment: Deployment, snapshot: GatewaySnapshot = this.#snapshot): number {
    return this.scores.scoreOf(deployment, snapshot);
  }

  /** Every score term of a deployment, for route explanations and /stats; `isProbe`: as a recovery probe is ranked. */
  explainScore(
    deployment: Deployment,
    options: { readonly snapshot?: GatewaySnapshot; readonly isProbe?: boolean } = {},
  ): ScoreBreakdown | undefined {
    return this.scores.explain(deployment, options.snapshot ?? this.#snapshot, options.isProbe === true);
  }

  rejectsPrefill(deployment: Deployment): boolean {
    return this.#prefillRejected.has(deployment.key);
  }

  markPrefillRejected(deployment: Deployment): void {
    this.#prefillRejected.add(deployment.key);
  }

  plan(request: ClientRouteRequest, snapshot: GatewaySnapshot = this.#snapshot): RoutePlan {
    return planRoute(
      withClientRules(request, snapshot.config.server),
      routerContextOf(this, snapshot, request, this.clock.now()),
    );
  }

  /**
   * Plans a route; when nothing is ready and `routing.queue_timeout_ms` > 0, queues (arrival order per requested
   * model and client rules, `queueKey`, bounded by `routing.max_queued`) until a candidate is ready. A request also
   * queues when others wait in its queue, so a newcomer cannot take the slot a waiter is about to get. Waiting for a
   * better candidate (`max_wait_for_better_ms`) is only for when something else is ready: with nothing ready, a
   * cooling or busy candidate is waited for in the queue, in turn, not by every request at once. Returns the last
   * plan either way. `receivedAtMs`: the request's arrival; its `routing.total_timeout_ms` counts from then.
   */
  planOrQueue(
    request: ClientRouteRequest,
    signal: AbortSignal,
    snapshot: GatewaySnapshot = this.#snapshot,
    receivedAtMs = this.clock.now(),
  ): PlannedRoute | Promise<PlannedRoute> {
    const first = { plan: this.plan(request, snapshot), snapshot };
    if (snapshot.config.routing.queueTimeoutMs <= 0) return first;
    const queue = queueKey(request, snapshot.config.server); // served at once, without a promise: the common case
    if (first.plan.candidates.length > 0 && !this.#routeQueues.hasWaiting(queue)) return first;
    // A waiter plans on the serving config: after a reload it is served by the new one (no upstream work has
    // started yet), so a provider the reload removed gets nothing from the queue either.
    return this.#routeQueues.wait(queue, signal, first, {
      replan: () => {
        const current = this.#snapshot;
        return { plan: this.plan(request, current), snapshot: current };
      },
      soonestAvailableMs: (plan) => this.soonestAvailableMs(plan),
      timeLeftMs: receivedAtMs + snapshot.config.routing.totalTimeoutMs - this.clock.now(),
    });
  }

  get queuedRequests(): number {
    return this.#routeQueues.size;
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
    let services = this.#failoverServices.get(snapshot);
    if (services === undefined) {
      const snapshotOf = (deployment: Deployment) => this.#snapshotOf.get(deployment);
      services = failoverServicesOf(this, snapshot, snapshotOf, (deployment) => this.#upstreams.servingAs(deployment));
      this.#failoverServices.set(snapshot, services);
    }
    return forward(plan, request, services);
  }

  /** Ms until a plan's first candidate is usable again; with the request, its budgets count (an attempt spends). */
  soonestAvailableMs(plan: RoutePlan, of?: { request: ForwardRequest; snapshot: GatewaySnapshot }): number | undefined {
    const nowMs = this.clock.now();
    const budgetCheck = of && budgetCheckOf(this.budgets, this.promptCalibration, of.snapshot, of.request, nowMs);
    const availabilityOf = (deployment: Deployment) =>
      this.availability.peek(deployment.key, deployment.provider.settings.name);
    return soonestAvailableMs(plan, nowMs, availabilityOf, budgetCheck, of !== undefined);
  }

  /** Subscribes to finished request records; returns the unsubscribe function. */
  onRecord(listener: RecordListener): () => void {
    return this.recorder.onRecord(listener);
  }

  /** `POST /admin/cooldowns/reset`: forget every cooldown, circuit, budget count and refused feature. */
  async resetLimits(): Promise<void> {
    this.availability.reset();
    this.refusedFeatures.reset();
    await this.budgets.reset();
  }

  /** Shutdown began: new requests get 503 `service_unavailable`, in-flight ones finish, queued ones leave at once. */
  get isShuttingDown(): boolean {
    return this.#routeQueues.isClosed;
  }

  set isShuttingDown(value: boolean) {
    if (value) this.#routeQueues.close();
  }
  #isClosed = false;

  /** Idempotent: closing twice is harmless. */
  async close(): Promise<void> {
    if (this.#isClosed) return;
    this.#isClosed = true;
    await this.state.close();
    if (this.#ownsDispatcher) await this.dispatcher.close();
  }
}
