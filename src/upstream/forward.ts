// The failover executor: try the plan's candidates best-first, classify each answer, learn from it (cooldowns,
// circuit breaker, stats), and return the first usable response. One function serves every endpoint.
//
// Bounds: at most `routing.maxAttempts` upstream attempts; each attempt's wait for headers is the provider's
// `timeout_ms` capped by what is left of `routing.totalTimeoutMs`; a timed-out candidate is never retried in the
// same request (a silent upstream stays silent); the whole request, waits included, ends by the deadline.
import type { Dispatcher } from "undici";
import type { Clock } from "../clock.ts";
import type { RoutingSettings } from "../config/types.ts";
import {
  type AttemptSummary,
  type GatewayError,
  RateLimitedError,
  UpstreamRequestError,
  UpstreamTimeoutError,
  UpstreamUnavailableError,
} from "../errors/gateway-error.ts";
import type { AvailabilityBook, CooldownCause } from "../limits/availability.ts";
import { type BudgetLedger, type BudgetScope, isReservation, type Reservation } from "../limits/budgets.ts";
import { dayWindow } from "../limits/day-window.ts";
import type { RateLimitDialectName } from "../limits/header-dialects.ts";
import { RATE_LIMIT_DIALECTS } from "../limits/header-dialects.ts";
import type { HeaderMap } from "../limits/header-map.ts";
import { parseRateLimitHeaders } from "../limits/rate-limit-headers.ts";
import type { StatsBook } from "../observability/stats.ts";
import type { Deployment } from "../providers/catalog.ts";
import type { RouteCandidate, RoutePlan } from "../router/plan-route.ts";
import { type AttemptOutcome, type AttemptRecord, type AttemptSkip, redactSecrets } from "./attempt-record.ts";
import { classifyErrorInSuccess, classifyResponse, type Verdict } from "./classify-response.ts";
import { type OpenedStream, openStream } from "./open-stream.ts";
import { buildPayload, classifyNetworkError, sendUpstream } from "./upstream-request.ts";

export interface ForwardServices {
  readonly dispatcher: Dispatcher;
  readonly clock: Clock;
  readonly availability: AvailabilityBook;
  readonly stats: StatsBook;
  readonly budgets: BudgetLedger;
  readonly routing: RoutingSettings;
  /** Feeds the score's health term. */
  recordHealth(deployment: Deployment, isSuccess: boolean, latencyMs: number): void;
  /** Budget scopes a deployment charges (its provider's account-wide pool and its own). */
  scopesOf(deployment: Deployment): readonly BudgetScope[];
  /** Time until a cooling deployment is available again (for 429 retry-after). */
  soonestAvailableMs(plan: RoutePlan): number | undefined;
}

export interface ForwardRequest {
  /** e.g. `/chat/completions` */
  readonly endpointPath: string;
  readonly body: Readonly<Record<string, unknown>>;
  readonly isStream: boolean;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
  /** Estimated prompt tokens (o200k) and the requested output tokens, for token budgets. */
  readonly promptTokens: number;
  readonly maxOutputTokens: number;
  /** Filled with every attempt and skip as they happen, so the caller has them even when forward() throws. */
  readonly trace: ForwardTrace;
}

export interface ForwardTrace {
  readonly attempts: AttemptRecord[];
  readonly skips: AttemptSkip[];
}

export interface JsonResult {
  readonly kind: "json";
  readonly status: number;
  readonly bodyText: string;
  readonly deployment: Deployment;
}

export interface StreamResult {
  readonly kind: "stream";
  readonly stream: OpenedStream;
  readonly deployment: Deployment;
  /** Budget reservation held for the stream's whole life; the caller reconciles and releases it. */
  readonly reservation: Reservation;
  /** The gateway added `stream_options.include_usage`; the usage chunk is not for the client. */
  readonly isUsageInjected: boolean;
}

export interface ForwardOutcome {
  readonly result: JsonResult | StreamResult;
  readonly attempts: readonly AttemptRecord[];
  readonly skips: readonly AttemptSkip[];
}

/** Outcomes that say the candidate is unhealthy (rate limits and rejected requests do not). */
const HEALTH_FAILURES: ReadonlySet<AttemptOutcome> = new Set([
  "server_error",
  "network_error",
  "timeout",
  "first_token_timeout",
  "bad_response",
]);

/** A retry hint at least this long on a daily-quota 429 is taken as the quota's reset; shorter ones are not. */
const DAILY_HINT_TRUST_MS = 3_600_000;

/** Thrown when the client disconnected: nobody is left to answer. */
export class ClientAbortedError extends Error {
  constructor() {
    super("client disconnected");
    this.name = "ClientAbortedError";
  }
}

type AttemptResult =
  | { readonly ok: true; readonly result: JsonResult | StreamResult }
  | {
      readonly ok: false;
      readonly outcome: AttemptOutcome;
      readonly status: number | undefined;
      readonly reason: string;
      readonly verdict?: Verdict;
    };

export async function forward(
  plan: RoutePlan,
  request: ForwardRequest,
  services: ForwardServices,
): Promise<ForwardOutcome> {
  const { clock, routing } = services;
  const startedAtMs = clock.now();
  const deadlineMs = startedAtMs + routing.totalTimeoutMs;
  const { attempts, skips } = request.trace;
  const queue: { candidate: RouteCandidate; waitUntilMs: number }[] = [];
  if (plan.waitFor !== undefined) queue.push({ candidate: plan.waitFor, waitUntilMs: plan.waitFor.untilMs });
  for (const candidate of plan.candidates) queue.push({ candidate, waitUntilMs: 0 });

  // After a context-length rejection only candidates with a known larger context are worth trying.
  let contextFloorTokens: number | undefined;
  let lastContextError: Verdict | undefined;
  let isOutOfAttempts = false;

  for (const { candidate, waitUntilMs } of queue) {
    if (isOutOfAttempts) break;
    const { deployment } = candidate;
    const settings = deployment.provider.settings;
    if (
      contextFloorTokens !== undefined &&
      (deployment.contextTokens === undefined || deployment.contextTokens <= contextFloorTokens)
    ) {
      skips.push({
        deploymentKey: deployment.key,
        reason: `context ${deployment.contextTokens ?? "unknown"} is not larger than ${contextFloorTokens}`,
      });
      continue;
    }
    if (waitUntilMs > clock.now()) {
      await sleep(Math.min(waitUntilMs, deadlineMs) - clock.now(), request.signal);
      if (request.signal.aborted) throw new ClientAbortedError();
    }
    for (let tryIndex = 0; ; tryIndex++) {
      if (attempts.length >= routing.maxAttempts) {
        isOutOfAttempts = true;
        break;
      }
      const remainingMs = deadlineMs - clock.now();
      if (remainingMs <= 0) {
        isOutOfAttempts = true;
        break;
      }
      const availability = services.availability.acquire(deployment.key, settings.name);
      if (!availability.isAvailable) {
        skips.push({ deploymentKey: deployment.key, reason: availability.reason, untilMs: availability.untilMs });
        break;
      }
      const settingsCost = request.promptTokens + (settings.countMaxTokens ? request.maxOutputTokens : 0);
      const reserved = services.budgets.reserve(services.scopesOf(deployment), { tokens: settingsCost }, clock.now());
      const reservation = reserved instanceof Promise ? await reserved : reserved;
      if (!isReservation(reservation)) {
        services.availability.releaseProbe(deployment.key);
        skips.push({ deploymentKey: deployment.key, reason: reservation.reason, untilMs: reservation.retryAtMs });
        break;
      }
      const attemptStartMs = clock.now();
      const result = await attemptOnce(deployment, request, services, remainingMs, reservation);
      if (!result.ok || result.result.kind === "json") {
        // The request reached the provider and counts; failed attempts consumed no tokens.
        if (!result.ok) services.budgets.reconcile(reservation, 0, clock.now());
        services.budgets.release(reservation);
      }
      const durationMs = clock.now() - attemptStartMs;
      if (result.ok || HEALTH_FAILURES.has(result.outcome)) services.recordHealth(deployment, result.ok, durationMs);
      if (result.ok) {
        attempts.push(
          record(
            deployment,
            "success",
            result.result.kind === "json" ? result.result.status : 200,
            "ok",
            attemptStartMs,
            durationMs,
          ),
        );
        return { result: result.result, attempts, skips };
      }
      if (result.outcome === "client_aborted") {
        services.availability.releaseProbe(deployment.key);
        throw new ClientAbortedError();
      }
      attempts.push(
        record(
          deployment,
          result.outcome,
          result.status,
          redactSecrets(result.reason, settings.apiKeys),
          attemptStartMs,
          durationMs,
        ),
      );
      services.stats.recordFailure(deployment.key);
      const verdict = result.verdict;
      if (verdict?.kind === "rejected") {
        services.availability.releaseProbe(deployment.key);
        throw rejectedError(verdict, attempts, settings.apiKeys);
      }
      if (verdict?.kind === "context_length") {
        services.availability.releaseProbe(deployment.key);
        lastContextError = verdict;
        contextFloorTokens = Math.max(contextFloorTokens ?? 0, deployment.contextTokens ?? 0);
        break;
      }
      const isTransient =
        result.outcome === "server_error" || result.outcome === "network_error" || result.outcome === "bad_response";
      if (isTransient && tryIndex < settings.retries) continue;
      break;
    }
  }
  throw finalError(plan, attempts, skips, lastContextError, services);
}

async function attemptOnce(
  deployment: Deployment,
  request: ForwardRequest,
  services: ForwardServices,
  remainingMs: number,
  reservation: Reservation,
): Promise<AttemptResult> {
  const controller = new AbortController();
  const deadline = new AbortController();
  // A committed stream may outlive the request deadline (it has its own duration cap), so for streams the
  // deadline bounds only the phases before the first token, through headersTimeout and the first-token timer.
  // The attempt's signal is linked to the client and the deadline by hand and unlinked when the attempt ends.
  // AbortSignal.timeout + AbortSignal.any cost more: the timeout's timer outlives the attempt by `remainingMs`
  // (120 s by default), so under load every recent request stays in memory, and AbortSignal.any is costly per
  // call (bench/README.md: by hand, +20% JSON req/s per core and 400 MB less peak memory at 10k req/s).
  const deadlineTimer = setTimeout(() => {
    const reason = new DOMException("The operation was aborted due to timeout", "TimeoutError");
    deadline.abort(reason);
    if (!request.isStream) controller.abort(reason);
  }, remainingMs);
  deadlineTimer.unref();
  const onClientAbort = (): void => controller.abort(request.signal.reason);
  if (request.signal.aborted) onClientAbort();
  else request.signal.addEventListener("abort", onClientAbort, { once: true });
  try {
    return await attemptWithSignals(deployment, request, services, remainingMs, reservation, {
      controller,
      deadline: deadline.signal,
    });
  } finally {
    clearTimeout(deadlineTimer);
    request.signal.removeEventListener("abort", onClientAbort);
  }
}

async function attemptWithSignals(
  deployment: Deployment,
  request: ForwardRequest,
  services: ForwardServices,
  remainingMs: number,
  reservation: Reservation,
  { controller, deadline }: { readonly controller: AbortController; readonly deadline: AbortSignal },
): Promise<AttemptResult> {
  const settings = deployment.provider.settings;
  const nowMs = services.clock.now();
  const signal = controller.signal;
  const headersTimeoutMs = Math.min(settings.timeoutMs, remainingMs);
  const isUsageInjected = request.isStream && settings.injectStreamUsage && !clientAskedForUsage(request.body);
  let response: Dispatcher.ResponseData;
  // Our own timer for `timeout_ms`: undici's headersTimeout uses coarse shared timers (~1 s resolution), which
  // would make a 300 ms timeout fire after a second. undici's stays as a backstop.
  let isHeadersLate = false;
  const headersTimer = setTimeout(() => {
    isHeadersLate = true;
    controller.abort();
  }, headersTimeoutMs);
  try {
    response = await sendUpstream(services.dispatcher, {
      deployment,
      endpointPath: request.endpointPath,
      payload: buildPayload(request.body, deployment.model.id, isUsageInjected),
      isStream: request.isStream,
      headersTimeoutMs: headersTimeoutMs + 1_000,
      // Streams use their own first-token and idle timers (exact, and distinguishable in reasons); 0 disables undici's.
      bodyTimeoutMs: request.isStream ? 0 : Math.max(1, remainingMs),
      signal,
    });
  } catch (error) {
    if (isHeadersLate && !request.signal.aborted) {
      services.availability.recordFailure(deployment.key);
      return {
        ok: false,
        outcome: "timeout",
        status: undefined,
        reason: `no response headers within timeout_ms (${headersTimeoutMs} ms)`,
      };
    }
    return networkFailure(error, request, deadline, deployment, services);
  } finally {
    clearTimeout(headersTimer);
  }
  const headers = response.headers as HeaderMap;
  if (response.statusCode < 200 || response.statusCode >= 300) {
    let bodyText: string;
    try {
      bodyText = await response.body.text();
    } catch (error) {
      return networkFailure(error, request, deadline, deployment, services);
    }
    const verdict = classifyResponse(response.statusCode, headers, bodyText, services.clock.now());
    return learnFromFailure(verdict, response.statusCode, deployment, services);
  }
  learnFromHeaders(headers, deployment, services, nowMs);
  if (request.isStream) {
    const opened = await openStream({
      body: response.body,
      headers,
      controller,
      signal,
      deadline,
      clientSignal: request.signal,
      firstTokenTimeoutMs: Math.min(settings.firstTokenTimeoutMs, remainingMs),
      streamIdleTimeoutMs: settings.streamIdleTimeoutMs,
      nowMs: () => services.clock.now(),
    });
    if (opened.ok)
      return { ok: true, result: { kind: "stream", stream: opened.stream, deployment, reservation, isUsageInjected } };
    if (opened.failure === "client_aborted")
      return { ok: false, outcome: "client_aborted", status: 200, reason: "client disconnected" };
    if (opened.verdict !== undefined)
      return learnFromFailure(opened.verdict, response.statusCode, deployment, services);
    services.availability.recordFailure(deployment.key);
    const outcome: AttemptOutcome =
      opened.failure === "first_token_timeout"
        ? "first_token_timeout"
        : opened.failure === "timeout"
          ? "timeout"
          : "bad_response";
    return { ok: false, outcome, status: response.statusCode, reason: opened.reason };
  }
  let bodyText: string;
  try {
    bodyText = await response.body.text();
  } catch (error) {
    return networkFailure(error, request, deadline, deployment, services);
  }
  let json: unknown;
  try {
    json = JSON.parse(bodyText);
  } catch {
    services.availability.recordFailure(deployment.key);
    return {
      ok: false,
      outcome: "bad_response",
      status: response.statusCode,
      reason: "HTTP 200 with a body that is not JSON",
    };
  }
  const inBandError = classifyErrorInSuccess(json, headers, services.clock.now());
  if (inBandError !== undefined) return learnFromFailure(inBandError, response.statusCode, deployment, services);
  const latencyMs = services.clock.now() - nowMs;
  const usage = readUsage(json);
  if (usage.promptTokens + usage.completionTokens > 0) {
    services.budgets.reconcile(reservation, usage.promptTokens + usage.completionTokens, services.clock.now());
  }
  services.stats.recordSuccess(deployment.key, latencyMs, usage.promptTokens, usage.completionTokens);
  services.availability.recordSuccess(deployment.key);
  return {
    ok: true,
    result: {
      kind: "json",
      status: response.statusCode,
      bodyText: ensureModelField(json, bodyText, deployment),
      deployment,
    },
  };
}

function networkFailure(
  error: unknown,
  request: ForwardRequest,
  deadline: AbortSignal,
  deployment: Deployment,
  services: ForwardServices,
): AttemptResult {
  if (request.signal.aborted)
    return { ok: false, outcome: "client_aborted", status: undefined, reason: "client disconnected" };
  const failure = classifyNetworkError(error);
  services.availability.recordFailure(deployment.key);
  if (failure.kind === "timeout" || deadline.aborted) {
    const reason = failure.kind === "timeout" ? failure.reason : "the request's total time ran out";
    return { ok: false, outcome: "timeout", status: undefined, reason };
  }
  return { ok: false, outcome: "network_error", status: undefined, reason: failure.reason };
}

/** Applies what a failed answer teaches (cooldowns, parked keys, circuit) and turns it into an attempt result. */
function learnFromFailure(
  verdict: Verdict,
  status: number,
  deployment: Deployment,
  services: ForwardServices,
): AttemptResult {
  const { availability } = services;
  const settings = deployment.provider.settings;
  switch (verdict.kind) {
    case "success":
      return { ok: false, outcome: "bad_response", status, reason: "unexpected success verdict" };
    case "rate_limited": {
      const cause: CooldownCause =
        verdict.limitKind === "daily"
          ? "daily_quota"
          : verdict.limitKind === "credits"
            ? "credits_exhausted"
            : verdict.limitKind === "capacity"
              ? "capacity"
              : "rate_limited";
      // A daily quota is parked until the provider's day ends. A short hint on a daily 429 (Gemini's PerDay
      // RetryInfo says ~20 s) only means "not now"; an hour or more (GitHub's "wait 57829 seconds") is the reset.
      if (verdict.limitKind === "daily" && (verdict.hint === undefined || verdict.hint.delayMs < DAILY_HINT_TRUST_MS)) {
        availability.park(
          deployment.key,
          dayWindow(settings.dayReset, services.clock.now()).endMs,
          cause,
          verdict.reason,
          "guessed",
        );
      } else if (verdict.limitKind === "credits" && verdict.hint === undefined) {
        availability.recordInvalidKey(settings.name, verdict.reason, "credits_exhausted");
      } else {
        availability.recordRateLimited(deployment.key, verdict.hint, cause, verdict.reason);
      }
      const hint =
        verdict.hint === undefined
          ? ""
          : ` (retry in ${Math.ceil(verdict.hint.delayMs)} ms, from ${verdict.hint.source})`;
      return { ok: false, outcome: "rate_limited", status, reason: `${verdict.reason}${hint}`, verdict };
    }
    case "invalid_key":
      // The reason quotes the upstream's message, which often echoes the key; /health and /stats show it.
      availability.recordInvalidKey(settings.name, `key rejected: ${redactSecrets(verdict.reason, settings.apiKeys)}`);
      return { ok: false, outcome: "invalid_key", status, reason: verdict.reason, verdict };
    case "context_length":
      return { ok: false, outcome: "context_length", status, reason: verdict.reason, verdict };
    case "transient":
      availability.recordFailure(deployment.key);
      return { ok: false, outcome: "server_error", status, reason: verdict.reason, verdict };
    case "rejected":
      return { ok: false, outcome: "rejected", status, reason: verdict.error.message, verdict };
  }
}

/** A success that says "remaining: 0" parks the deployment until that window resets. */
function learnFromHeaders(headers: HeaderMap, deployment: Deployment, services: ForwardServices, nowMs: number): void {
  const dialectName = deployment.provider.settings.rateLimitDialect;
  if (!(dialectName in RATE_LIMIT_DIALECTS)) return;
  const windows = parseRateLimitHeaders(headers, dialectName as RateLimitDialectName, nowMs);
  if (windows.length === 0) return;
  const scopes = services.scopesOf(deployment);
  const ownScope = scopes[scopes.length - 1];
  if (ownScope !== undefined) services.budgets.learn(ownScope, windows, nowMs);
  for (const window of windows) {
    if (window.remaining === 0 && window.resetAtMs !== undefined && window.resetAtMs > nowMs) {
      services.availability.park(
        deployment.key,
        window.resetAtMs,
        "budget_exhausted",
        `provider reports 0 ${window.unit} left this ${window.window}`,
        "provider",
      );
    }
  }
}

function finalError(
  plan: RoutePlan,
  attempts: readonly AttemptRecord[],
  skips: readonly AttemptSkip[],
  lastContextError: Verdict | undefined,
  services: ForwardServices,
): GatewayError {
  const summaries: AttemptSummary[] = attempts.map((attempt) => {
    const summary: AttemptSummary = { provider: attempt.provider, model: attempt.model, reason: attempt.reason };
    if (attempt.status !== undefined) summary.status = attempt.status;
    return summary;
  });
  const listed = summaries.map((summary) => {
    // Reasons from classifyResponse already start with "HTTP 500: ..."; do not say it twice.
    const status =
      summary.status === undefined || summary.reason.startsWith(`HTTP ${summary.status}`)
        ? ""
        : `HTTP ${summary.status} `;
    return `${summary.provider}/${summary.model}: ${status}${summary.reason}`;
  });
  const detail = listed.length > 0 ? ` Attempts: ${listed.join("; ")}.` : "";
  const onlyContext = attempts.length > 0 && attempts.every((attempt) => attempt.outcome === "context_length");
  if (onlyContext && lastContextError?.kind === "context_length") {
    return new UpstreamRequestError(
      `The request does not fit the context window of any candidate.${detail}`,
      { status: 400, type: "invalid_request_error", code: "context_length_exceeded" },
      { param: "messages", attempts: summaries },
    );
  }
  const isRateLimitOnly = attempts.every(
    (attempt) => attempt.outcome === "rate_limited" || attempt.outcome === "invalid_key",
  );
  const hasRateLimited =
    attempts.some((attempt) => attempt.outcome === "rate_limited") ||
    plan.skipped.some((skip) => skip.cause === "cooldown" || skip.cause === "budget") ||
    skips.length > 0;
  if (isRateLimitOnly && hasRateLimited) {
    // The plan's view, refined by what attempt-time checks learned (a budget another replica used up).
    let soonestMs = services.soonestAvailableMs(plan);
    const nowMs = services.clock.now();
    for (const skip of skips) {
      if (skip.untilMs === undefined || !Number.isFinite(skip.untilMs)) continue;
      const waitMs = Math.max(0, skip.untilMs - nowMs);
      if (soonestMs === undefined || soonestMs === 0 || waitMs < soonestMs) soonestMs = waitMs;
    }
    const options =
      soonestMs === undefined ? { attempts: summaries } : { attempts: summaries, retryAfterMs: soonestMs };
    return new RateLimitedError(
      `Every candidate for \`${plan.requested}\` is rate-limited or cooling down${soonestMs === undefined ? "" : `; the first is available again in ${Math.ceil(soonestMs / 1000)} s`}.${detail}`,
      options,
    );
  }
  const failures = attempts.filter((attempt) => attempt.outcome !== "rate_limited");
  const isTimeoutOnly =
    failures.length > 0 &&
    failures.every((attempt) => attempt.outcome === "timeout" || attempt.outcome === "first_token_timeout");
  const message = `No upstream could serve \`${plan.requested}\`.${detail}`;
  return isTimeoutOnly
    ? new UpstreamTimeoutError(message, { attempts: summaries })
    : new UpstreamUnavailableError(message, { attempts: summaries });
}

function rejectedError(
  verdict: Verdict & { kind: "rejected" },
  attempts: readonly AttemptRecord[],
  secrets: readonly string[],
): UpstreamRequestError {
  const last = attempts[attempts.length - 1];
  // Upstreams echo the key they were sent ("Incorrect API key provided: sk-..."); this message goes to the client.
  const message = redactSecrets(verdict.error.message, secrets);
  const details: { status: number; type?: string; code?: string } = { status: verdict.status };
  if (verdict.error.type !== undefined) details.type = verdict.error.type;
  if (verdict.error.code !== undefined) details.code = verdict.error.code;
  return new UpstreamRequestError(
    last === undefined ? message : `${message} (from ${last.provider}/${last.model})`,
    details,
    verdict.error.param === undefined ? {} : { param: verdict.error.param },
  );
}

function record(
  deployment: Deployment,
  outcome: AttemptOutcome,
  status: number | undefined,
  reason: string,
  startedAtMs: number,
  durationMs: number,
): AttemptRecord {
  return {
    provider: deployment.provider.settings.name,
    model: deployment.model.id,
    deploymentKey: deployment.key,
    status,
    outcome,
    reason,
    startedAtMs,
    durationMs,
  };
}

function clientAskedForUsage(body: Readonly<Record<string, unknown>>): boolean {
  const options = body.stream_options;
  return (
    options !== null && typeof options === "object" && (options as { include_usage?: unknown }).include_usage === true
  );
}

function readUsage(json: unknown): { promptTokens: number; completionTokens: number } {
  const usage = (json as { usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } } | null)?.usage;
  return {
    promptTokens: typeof usage?.prompt_tokens === "number" ? usage.prompt_tokens : 0,
    completionTokens: typeof usage?.completion_tokens === "number" ? usage.completion_tokens : 0,
  };
}

/** The response's `model` names the model that answered; fill it in when the upstream left it out. */
function ensureModelField(json: unknown, bodyText: string, deployment: Deployment): string {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return bodyText;
  const model = (json as { model?: unknown }).model;
  if (typeof model === "string" && model !== "") return bodyText;
  return JSON.stringify({ ...(json as Record<string, unknown>), model: deployment.model.id });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
