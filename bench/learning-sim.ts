// Simulation: how well the gateway spends free-tier capacity, with limits in the config or learned from 429s,
// against providers that count with sliding windows or the way they really do (buckets, fixed windows).
//
// It drives the pure modules with a manual clock, not HTTP, so a compressed day runs in a second or two: the
// budget book (src/limits/budgets.ts), availability (cooldowns, src/limits/availability.ts), the 429 classifier
// and lessons (src/upstream/classify-response.ts, lessons.ts) with answers shaped like each provider's. The
// router is reduced to its ranking: candidates in rank order, skipping those cooling down or over budget
// (what router/plan-route.ts does for equal priorities and no other score terms). Answers are instant: no
// concurrency, no streams. The oracle sends every request to the best-ranked model whose provider would accept
// it at that instant. OpenRouter and Mistral are account-wide pools (`rate_limit_scope: account`, as their presets
// say): their deployments are charged to a pool scope too, and an account-wide 429 is learned for the pool.
// A second run (runSharedKey) shares the best model's key with another client for a third of the hour: how fast
// the gateway learns the shrunk share and climbs back once it is whole again.
//
// Run: ./node_modules/.bin/node bench/learning-sim.ts [--seed N] [--minutes N] [--rate requestsPerSecond]
//      [--shared-rate requestsPerSecond]
// SIM_DEBUG=1 also prints, per run, the 429s per deployment, the top misses and the learned limits.
import { parseArgs } from "node:util";
import { ManualClock } from "../src/clock.ts";
import { UTC_MIDNIGHT } from "../src/config/day-reset.ts";
import type { Limits, ProviderSettings } from "../src/config/types.ts";
import { AvailabilityBook } from "../src/limits/availability.ts";
import { BudgetBook, type BudgetScope, isReservation, learningScope, rulesFromLimits } from "../src/limits/budgets.ts";
import type { HeaderMap } from "../src/limits/header-map.ts";
import type { WindowAlgorithm } from "../src/limits/window-counters.ts";
import { classifyResponse } from "../src/upstream/classify-response.ts";
import type { Effect } from "../src/upstream/effects.ts";
import { lessonFromVerdict } from "../src/upstream/lessons.ts";

type Dialect = "groq" | "cerebras" | "openrouter" | "generic" | "mistral";

interface FakeProvider {
  readonly name: string;
  readonly dialect: Dialect;
  /** The provider's true limit per model (or per account when `isPool`: its preset says `rate_limit_scope: account`). */
  readonly limit: number;
  readonly windowMs: number;
  /** How it really counts, in the real-world profile (the sliding profile makes every provider sliding). */
  readonly realAlgorithm: WindowAlgorithm;
  readonly isPool: boolean;
  readonly models: readonly { readonly id: string; readonly rank: number }[];
}

const PROVIDERS: readonly FakeProvider[] = [
  {
    name: "groq",
    dialect: "groq",
    limit: 30,
    windowMs: 60_000,
    realAlgorithm: "bucket",
    isPool: false,
    models: [
      { id: "llama-3.3-70b", rank: 1 },
      { id: "gpt-oss-120b", rank: 4 },
    ],
  },
  {
    name: "cerebras",
    dialect: "cerebras",
    limit: 30,
    windowMs: 60_000,
    realAlgorithm: "bucket",
    isPool: false,
    models: [
      { id: "qwen-3-235b", rank: 2 },
      { id: "llama3.1-8b", rank: 9 },
    ],
  },
  {
    name: "openrouter",
    dialect: "openrouter",
    limit: 20,
    windowMs: 60_000,
    realAlgorithm: "fixed",
    isPool: true,
    models: [
      { id: "deepseek-r1:free", rank: 3 },
      { id: "qwen3-coder:free", rank: 6 },
      { id: "gemma-3-27b:free", rank: 10 },
    ],
  },
  {
    name: "gemini",
    dialect: "generic",
    limit: 10,
    windowMs: 60_000,
    realAlgorithm: "sliding",
    isPool: false,
    models: [
      { id: "gemini-2.5-flash", rank: 5 },
      { id: "gemini-2.5-flash-lite", rank: 7 },
    ],
  },
  {
    name: "mistral",
    dialect: "mistral",
    limit: 1,
    windowMs: 1_000,
    realAlgorithm: "sliding",
    isPool: true,
    models: [
      { id: "mistral-medium", rank: 8 },
      { id: "mistral-small", rank: 11 },
    ],
  },
];

/** One provider-side limiter: exact, as the provider counts. */
class TrueLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #algorithm: WindowAlgorithm;
  /** Another client of the same key (the shared-key run): what it leaves us at a moment. */
  readonly #limitAt: ((nowMs: number) => number) | undefined;
  #log: number[] = [];
  #fixedStartMs = -1;
  #fixedCount = 0;
  #bucketUsed = 0;
  #bucketAtMs = 0;

  constructor(limit: number, windowMs: number, algorithm: WindowAlgorithm, limitAt?: (nowMs: number) => number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#algorithm = algorithm;
    this.#limitAt = limitAt;
  }

  /** Whether a request at `nowMs` would be accepted, and the wait until one would be. */
  peek(nowMs: number): { isOk: boolean; waitMs: number; used: number } {
    if (this.#algorithm === "sliding") {
      this.#log = this.#log.filter((atMs) => atMs > nowMs - this.#windowMs);
      const limit = this.#limitAt?.(nowMs) ?? this.#limit;
      const isOk = this.#log.length < limit;
      // The wait until the log is under the limit again (0 while a shrunk share is still full of older sends).
      const freeing = this.#log[this.#log.length - limit];
      return {
        isOk,
        waitMs: isOk || freeing === undefined ? 0 : freeing + this.#windowMs - nowMs,
        used: this.#log.length,
      };
    }
    if (this.#algorithm === "fixed") {
      const startMs = Math.floor(nowMs / this.#windowMs) * this.#windowMs;
      const used = startMs === this.#fixedStartMs ? this.#fixedCount : 0;
      const isOk = used < this.#limit;
      return { isOk, waitMs: isOk ? 0 : startMs + this.#windowMs - nowMs, used };
    }
    const used = Math.max(0, this.#bucketUsed - ((nowMs - this.#bucketAtMs) * this.#limit) / this.#windowMs);
    const isOk = used + 1 <= this.#limit + 1e-9;
    return {
      isOk,
      waitMs: isOk ? 0 : Math.ceil(((used + 1 - this.#limit) * this.#windowMs) / this.#limit),
      used: Math.ceil(used),
    };
  }

  take(nowMs: number): void {
    if (this.#algorithm === "sliding") this.#log.push(nowMs);
    else if (this.#algorithm === "fixed") {
      const startMs = Math.floor(nowMs / this.#windowMs) * this.#windowMs;
      if (startMs !== this.#fixedStartMs) {
        this.#fixedStartMs = startMs;
        this.#fixedCount = 0;
      }
      this.#fixedCount++;
    } else {
      this.#bucketUsed =
        Math.max(0, this.#bucketUsed - ((nowMs - this.#bucketAtMs) * this.#limit) / this.#windowMs) + 1;
      this.#bucketAtMs = nowMs;
    }
  }
}

/** A 429 as each provider shapes it: the dialect's headers and body. */
function refusalOf(
  provider: FakeProvider,
  model: string,
  waitMs: number,
  nowMs: number,
): { headers: HeaderMap; body: string } {
  const seconds = Math.max(0.001, waitMs / 1_000);
  switch (provider.dialect) {
    case "groq":
      return {
        headers: { "retry-after": String(Math.ceil(seconds)) },
        body: JSON.stringify({
          error: {
            message: `Rate limit reached for model \`${model}\` in organization \`org_sim\` service tier \`on_demand\` on requests per minute (RPM): Limit ${provider.limit}, Used ${provider.limit}, Requested 1. Please try again in ${seconds.toFixed(3)}s.`,
            type: "requests",
            code: "rate_limit_exceeded",
          },
        }),
      };
    case "cerebras":
      return {
        headers: {
          "x-ratelimit-limit-requests-minute": String(provider.limit),
          "x-ratelimit-remaining-requests-minute": "0",
          "x-ratelimit-reset-requests-minute": seconds.toFixed(3),
        },
        body: JSON.stringify({
          message: "Requests per minute limit exceeded - too many requests sent.",
          type: "too_many_requests_error",
          code: "request_quota_exceeded",
        }),
      };
    case "openrouter":
      return {
        headers: {
          "x-ratelimit-limit": String(provider.limit),
          "x-ratelimit-remaining": "0",
          "x-ratelimit-reset": String(nowMs + waitMs),
        },
        body: JSON.stringify({ error: { message: "Rate limit exceeded: free-models-per-min. ", code: 429 } }),
      };
    case "generic":
      return {
        headers: {},
        body: JSON.stringify([
          {
            error: {
              code: 429,
              message: "You exceeded your current quota, please check your plan and billing details.",
              status: "RESOURCE_EXHAUSTED",
              details: [
                {
                  "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                  violations: [
                    {
                      quotaMetric: "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                      quotaId: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                      quotaDimensions: { location: "global", model },
                      quotaValue: String(provider.limit),
                    },
                  ],
                },
                { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: `${Math.ceil(seconds)}s` },
              ],
            },
          },
        ]),
      };
    case "mistral":
      // Mistral's 1-per-second limit answers a bare 429: no limit header for the second, no retry hint.
      return { headers: {}, body: JSON.stringify({ message: "Requests rate limit exceeded", object: "error" }) };
  }
}

type Knowledge = "config" | "config-sliding" | "learned";
type Profile = "sliding" | "real-world";

interface RunResult {
  readonly requests: number;
  readonly served: number;
  readonly upstream429: number;
  readonly rankSum: number;
  readonly bestAvailable: number;
}

interface Deployment {
  readonly provider: FakeProvider;
  readonly model: string;
  readonly rank: number;
  readonly key: string;
  readonly scopes: readonly BudgetScope[];
  readonly limiter: TrueLimiter;
  readonly settings: ProviderSettings;
}

function deploymentsFor(knowledge: Knowledge, profile: Profile): Deployment[] {
  const deployments: Deployment[] = [];
  for (const provider of PROVIDERS) {
    const algorithm = profile === "sliding" ? "sliding" : provider.realAlgorithm;
    const declared: WindowAlgorithm = knowledge === "config" ? algorithm : "sliding";
    const limits: Limits = {
      ...(provider.windowMs === 1_000 ? { rps: provider.limit } : { rpm: provider.limit }),
      window: declared,
    };
    const poolLimiter = provider.isPool ? new TrueLimiter(provider.limit, provider.windowMs, algorithm) : undefined;
    // As pipeline/snapshot.ts builds them: an account-wide provider has its pool scope even with no limits.
    const pool: BudgetScope | undefined = provider.isPool
      ? {
          id: `provider:${provider.name}`,
          ...(knowledge === "learned" ? { rules: [], concurrency: undefined } : rulesFromLimits(limits)),
          dayReset: UTC_MIDNIGHT,
        }
      : undefined;
    // A learned run knows only the preset's window algorithm (`limits: { window }`), no numbers.
    const settingsLimits: Limits | undefined = knowledge === "learned" ? { window: algorithm } : { window: declared };
    const settings = {
      name: provider.name,
      rateLimitDialect: provider.dialect,
      dayReset: UTC_MIDNIGHT,
      limits: settingsLimits,
      rateLimitScope: provider.isPool ? "account" : "model",
      apiKeys: [],
    } as unknown as ProviderSettings;
    for (const model of provider.models) {
      const own: BudgetScope = {
        id: `deployment:${provider.name}/${model.id}`,
        ...(provider.isPool || knowledge === "learned"
          ? { rules: [], concurrency: undefined }
          : rulesFromLimits(limits)),
        dayReset: UTC_MIDNIGHT,
      };
      deployments.push({
        provider,
        model: model.id,
        rank: model.rank,
        key: `${provider.name}/${model.id}`,
        scopes: pool === undefined ? [own] : [pool, own],
        limiter: poolLimiter ?? new TrueLimiter(provider.limit, provider.windowMs, algorithm),
        settings,
      });
    }
  }
  return deployments.sort((left, right) => left.rank - right.rank);
}

/** A seeded generator of uniform numbers in (0, 1) (a linear congruential one: the same runs on every machine). */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return (state + 0.5) / 4_294_967_296;
  };
}

/** Poisson arrivals over a compressed day: the rate follows a day curve (quiet night, busy afternoon). */
function arrivals(seed: number, minutes: number, meanPerSecond: number): number[] {
  const random = seededRandom(seed);
  const times: number[] = [];
  const endMs = minutes * 60_000;
  const peak = meanPerSecond * 2;
  let atMs = 0;
  // Thinning: candidates at the peak rate, kept with probability rate(t) / peak.
  while (true) {
    atMs += (-Math.log(random()) / peak) * 1_000;
    if (atMs >= endMs) break;
    const rate = meanPerSecond * (1 - Math.cos((2 * Math.PI * atMs) / endMs));
    if (random() < rate / peak) times.push(Math.round(atMs));
  }
  return times;
}

const START_MS = Date.UTC(2026, 0, 1);

function runGateway(knowledge: Knowledge, profile: Profile, times: readonly number[]): RunResult {
  return simulate(`${knowledge}/${profile}`, deploymentsFor(knowledge, profile), times);
}

/**
 * The gateway's side of a run: each request goes to the first deployment in rank order that is not cooling down,
 * has budget, and is accepted by its provider; a 429 teaches what the recorder would. `observe` sees each request's
 * fate (the deployment that served it, or none) with the book as it is then.
 */
function simulate(
  label: string,
  deployments: readonly Deployment[],
  times: readonly number[],
  observe?: (nowMs: number, servedBy: Deployment | undefined, refusals: number, budgets: BudgetBook) => void,
): RunResult {
  const clock = new ManualClock(START_MS);
  const budgets = new BudgetBook();
  const availability = new AvailabilityBook(clock, {
    rateLimitBaseMs: 1_000,
    rateLimitMaxMs: 60_000,
    invalidKeyMs: 3_600_000,
    modelUnavailableMs: 900_000,
    unsupportedFeatureMs: 21_600_000,
    unservedEndpointMs: 86_400_000,
    failureThreshold: 3,
    suspectSingleFlight: true,
    failureWindowMs: 10_000,
    failureRateThreshold: 0.5,
    circuitOpenMs: 30_000,
    circuitFirstProbeMs: 30_000,
  });
  let served = 0;
  let upstream429 = 0;
  let rankSum = 0;
  let bestAvailable = 0;
  const refusals = new Map<string, number>();
  const misses = new Map<string, number>();
  for (const offsetMs of times) {
    const nowMs = START_MS + offsetMs;
    clock.advance(nowMs - clock.now());
    const best = deployments.find((deployment) => deployment.limiter.peek(nowMs).isOk);
    let servedBy: Deployment | undefined;
    const refusedBefore = upstream429;
    for (const deployment of deployments) {
      if (!availability.peek(deployment.key, deployment.provider.name).isAvailable) continue;
      const reservation = budgets.reserve(deployment.scopes, { tokens: 0 }, nowMs);
      if (!isReservation(reservation)) continue;
      const verdict = deployment.limiter.peek(nowMs);
      if (verdict.isOk) {
        deployment.limiter.take(nowMs);
        budgets.release(reservation);
        // As the recorder does: a success ends a run of 429s (their cooldowns double while it lasts).
        availability.recordSuccess(deployment.key);
        served++;
        rankSum += deployment.rank;
        if (deployment === best) bestAvailable++;
        else if (process.env.SIM_DEBUG !== undefined) {
          const miss = `${best?.key} -> ${deployment.key}`;
          misses.set(miss, (misses.get(miss) ?? 0) + 1);
        }
        servedBy = deployment;
        break;
      }
      upstream429++;
      if (process.env.SIM_DEBUG !== undefined) refusals.set(deployment.key, (refusals.get(deployment.key) ?? 0) + 1);
      const { headers, body } = refusalOf(deployment.provider, deployment.model, verdict.waitMs, nowMs);
      const classified = classifyResponse(429, headers, body, nowMs);
      const lesson = lessonFromVerdict(classified, deployment.settings, nowMs, { headers, bodyText: body });
      budgets.release(reservation);
      apply(lesson.effects, deployment, reservation.atMs, budgets, availability, nowMs);
    }
    observe?.(nowMs, servedBy, upstream429 - refusedBefore, budgets);
  }
  if (process.env.SIM_DEBUG !== undefined) {
    process.stderr.write(`${label}: 429s ${JSON.stringify(Object.fromEntries(refusals))}\n`);
    const top = [...misses].sort((left, right) => right[1] - left[1]).slice(0, 5);
    process.stderr.write(`  misses ${JSON.stringify(top)}\n`);
    const scopeIds = new Set(deployments.flatMap((deployment) => deployment.scopes.map((scope) => scope.id)));
    for (const scopeId of scopeIds) {
      const rules = budgets.learnedRules(scopeId);
      if (rules.length > 0) process.stderr.write(`  ${scopeId}: ${JSON.stringify(rules)}\n`);
    }
  }
  return { requests: times.length, served, upstream429, rankSum, bestAvailable };
}

/** What the recorder does with a lesson (pipeline/recorder.ts #apply), for the effects a 429 has here. */
function apply(
  effects: readonly Effect[],
  deployment: Deployment,
  sentAtMs: number,
  budgets: BudgetBook,
  availability: AvailabilityBook,
  nowMs: number,
): void {
  for (const effect of effects) {
    if (effect.kind === "cool_down")
      availability.recordRateLimited(deployment.key, effect.hint, effect.cause, effect.reason);
    else if (effect.kind === "park")
      availability.park(deployment.key, effect.untilMs, effect.cause, effect.reason, effect.source);
    else if (effect.kind === "cool_pool") {
      const own = availability.cooldownOf(deployment.key, deployment.provider.name);
      if (own !== undefined) availability.coolPool(deployment.provider.name, { ...own, reason: effect.reason });
    } else if (effect.kind === "learn_windows") {
      const scope = learningScope(deployment.scopes, effect.isAccountWide);
      if (scope !== undefined) budgets.learn(scope, effect.windows, nowMs);
    } else if (effect.kind === "learn_limits") {
      const scope = learningScope(deployment.scopes, effect.isAccountWide);
      if (scope !== undefined) budgets.learnLimits(scope, { ...effect.refusal, sentAtMs }, nowMs);
    }
  }
}

/** Every request to the best-ranked model whose provider accepts it now. */
function runOracle(profile: Profile, times: readonly number[]): RunResult {
  const deployments = deploymentsFor("config", profile);
  let served = 0;
  let rankSum = 0;
  for (const offsetMs of times) {
    const nowMs = START_MS + offsetMs;
    const best = deployments.find((deployment) => deployment.limiter.peek(nowMs).isOk);
    if (best === undefined) continue;
    best.limiter.take(nowMs);
    served++;
    rankSum += best.rank;
  }
  return { requests: times.length, served, upstream429: 0, rankSum, bestAvailable: served };
}

/**
 * A key shared with another client: "shared" (rank 1) allows 4 requests per sliding second and answers a bare 429
 * (no limit stated, no wait: the gateway infers a per-second limit from its own sends); from minute 20 to 40 of
 * the run another client of the key takes 3 of them. A fallback (rank 2) takes what "shared" does not. The
 * gateway should learn the shrunk share quickly and, once the other client stops, climb back to the whole limit
 * (budgets.ts, LimitRecovery) instead of keeping the low one until it lapses.
 */
function runSharedKey(seed: number, rate: number): string {
  const minutes = 60;
  const shrinkFromMs = START_MS + 20 * 60_000;
  const shrinkUntilMs = START_MS + 40 * 60_000;
  const shareAt = (nowMs: number) => (nowMs >= shrinkFromMs && nowMs < shrinkUntilMs ? 1 : 4);
  const shared: FakeProvider = {
    name: "shared",
    dialect: "mistral",
    limit: 4,
    windowMs: 1_000,
    realAlgorithm: "sliding",
    isPool: false,
    models: [{ id: "best-model", rank: 1 }],
  };
  const fallback: FakeProvider = { ...shared, name: "fallback", limit: 1e9, models: [{ id: "other", rank: 2 }] };
  const makeDeployments = (): Deployment[] =>
    [shared, fallback].map((provider) => {
      const model = provider.models[0] as { id: string; rank: number };
      return {
        provider,
        model: model.id,
        rank: model.rank,
        key: `${provider.name}/${model.id}`,
        scopes: [
          { id: `deployment:${provider.name}/${model.id}`, rules: [], concurrency: undefined, dayReset: UTC_MIDNIGHT },
        ],
        limiter: new TrueLimiter(
          provider.limit,
          provider.windowMs,
          "sliding",
          provider === shared ? shareAt : undefined,
        ),
        settings: {
          name: provider.name,
          rateLimitDialect: provider.dialect,
          dayReset: UTC_MIDNIGHT,
          limits: { window: "sliding" },
          rateLimitScope: "model",
          apiKeys: [],
        } as unknown as ProviderSettings,
      };
    });
  const times = flatArrivals(seed, minutes, rate);
  const phases = [
    { label: "minutes 0-20: the whole key (4/s)", untilMs: shrinkFromMs },
    { label: "minutes 20-40: another client takes 3/s", untilMs: shrinkUntilMs },
    { label: "minutes 40-60: the whole key again", untilMs: START_MS + minutes * 60_000 },
  ].map((phase) => ({ ...phase, requests: 0, oracle: 0, gateway: 0, refusals: 0, learnedAtEnd: "-" }));
  const phaseOf = (nowMs: number) => phases.find((phase) => nowMs < phase.untilMs) ?? phases[phases.length - 1];
  const oracle = makeDeployments()[0] as Deployment;
  for (const offsetMs of times) {
    const nowMs = START_MS + offsetMs;
    const phase = phaseOf(nowMs);
    if (phase === undefined) continue;
    phase.requests++;
    if (oracle.limiter.peek(nowMs).isOk) {
      oracle.limiter.take(nowMs);
      phase.oracle++;
    }
  }
  const scopeId = `deployment:${shared.name}/best-model`;
  const perSecond = (budgets: BudgetBook) =>
    budgets.learnedRules(scopeId).find((rule) => rule.window === "second" && rule.unit === "requests")?.limit;
  // When the learned limit was back at 4 after the other client stopped.
  let recoveredAtMs: number | undefined;
  simulate("shared-key", makeDeployments(), times, (nowMs, servedBy, refusals, budgets) => {
    const phase = phaseOf(nowMs);
    if (phase === undefined) return;
    if (servedBy?.provider === shared) phase.gateway++;
    phase.refusals += refusals;
    const limit = perSecond(budgets);
    phase.learnedAtEnd = limit === undefined ? "none" : `${limit}/s`;
    if (nowMs >= shrinkUntilMs && recoveredAtMs === undefined && (limit === undefined || limit >= 4)) {
      recoveredAtMs = nowMs;
    }
  });
  const rows = phases.map((phase) => [
    phase.label,
    String(phase.requests),
    String(phase.oracle),
    String(phase.gateway),
    percent(phase.gateway / Math.max(1, phase.oracle)),
    String(phase.refusals),
    phase.learnedAtEnd,
  ]);
  const header = [
    "phase",
    "requests",
    "oracle on shared",
    "gateway on shared",
    "share of oracle",
    "upstream 429s",
    "learned at end",
  ];
  const recovered =
    recoveredAtMs === undefined
      ? "the learned limit was not back at 4/s by the end"
      : `the learned limit was back at 4/s ${((recoveredAtMs - shrinkUntilMs) / 1_000).toFixed(0)} s after the other client stopped`;
  return `${table(header, rows)}\nshared key: seed ${seed}, ${minutes} simulated minutes, ${rate} req/s; ${recovered}\n`;
}

/** Poisson arrivals at a constant rate. */
function flatArrivals(seed: number, minutes: number, perSecond: number): number[] {
  const random = seededRandom(seed);
  const times: number[] = [];
  let atMs = 0;
  for (;;) {
    atMs += (-Math.log(random()) / perSecond) * 1_000;
    if (atMs >= minutes * 60_000) return times;
    times.push(Math.round(atMs));
  }
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, index) => Math.max(title.length, ...rows.map((row) => (row[index] ?? "").length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join(" | ")} |`;
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)].join("\n");
}

function main(): void {
  const { values } = parseArgs({
    options: {
      seed: { type: "string", default: "42" },
      minutes: { type: "string", default: "60" },
      rate: { type: "string", default: "1.5" },
      "shared-rate": { type: "string", default: "3" },
    },
  });
  const times = arrivals(Number(values.seed), Number(values.minutes), Number(values.rate));
  const startedMs = performance.now();
  const rows: string[][] = [];
  for (const profile of ["sliding", "real-world"] as const) {
    const oracle = runOracle(profile, times);
    const add = (label: string, result: RunResult) =>
      rows.push([
        profile,
        label,
        String(result.requests),
        percent(result.served / result.requests),
        (result.upstream429 / result.requests).toFixed(3),
        (result.rankSum / Math.max(1, result.served)).toFixed(2),
        percent(result.bestAvailable / Math.max(1, result.served)),
      ]);
    add("oracle", oracle);
    add("limits in config, sliding declared", runGateway("config-sliding", profile, times));
    if (profile === "real-world") add("limits in config, real windows declared", runGateway("config", profile, times));
    add("learned (no limits in config)", runGateway("learned", profile, times));
  }
  const header = ["profile", "run", "requests", "served", "429s/request", "mean rank", "best-available"];
  process.stdout.write(
    `${table(header, rows)}\n` +
      `seed ${values.seed}, ${values.minutes} simulated minutes, mean ${values.rate} req/s, ${(performance.now() - startedMs).toFixed(0)} ms\n\n`,
  );
  process.stdout.write(runSharedKey(Number(values.seed), Number(values["shared-rate"])));
}

function percent(value: number): string {
  return `${(value * 100).toFixed(1)} %`;
}

main();
