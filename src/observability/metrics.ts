// Prometheus metrics (prom-client) fed by finished request records and, at scrape time, by the live state.
// Every name starts with `llm_gateway_` (the default process metrics too) and carries its unit. Label values
// come only from the config and the fixed vocabularies (endpoints, protocols, outcomes): a model name a client
// made up becomes `other`, so no client can grow the number of series. docs/metrics.md lists every metric.
import type { Registry } from "prom-client";
import { RECORDED_ENDPOINTS, RECORDED_PROTOCOLS } from "../api-routes.ts";
import { OUTCOMES, traitsOf } from "../errors/outcomes.ts";
import { liveMetrics } from "./live-metrics.ts";
import type { KnownNames, LiveStateSource } from "./live-state.ts";
import {
  LabeledCounter,
  LabeledHistogram,
  LiveMetric,
  type RegistryMetric,
  registerIn,
} from "./metric-accumulators.ts";
import { METRIC_PREFIX, NONE, OTHER, oneOf } from "./metric-names.ts";
import type { RecordedAttempt, RecordedSkip, RequestRecord } from "./request-record.ts";
import { ESTIMATED, observeProviderTokens, REPORTED } from "./token-metrics.ts";

// The doors', the recorded route families' (conversations, files, ...) and `unknown` (refused before routing): fixed.
const ENDPOINTS = RECORDED_ENDPOINTS;
const PROTOCOLS = RECORDED_PROTOCOLS;
const PLAN_SKIP_CAUSES = new Set([
  "cooldown",
  "circuit_open",
  "invalid_key",
  "model_unavailable",
  "context",
  "tools",
  "vision",
  "json_schema",
  "kind",
  "budget",
  "paid",
  "endpoint",
]);

/** Seconds; from a fast cached answer to a long stream. */
const LATENCY_BUCKETS_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Seconds; the gateway's own time is expected in the low milliseconds. */
const OVERHEAD_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

export interface MetricsOptions {
  /** Process metrics (CPU, memory, event loop, GC) under the same prefix; default on. */
  readonly includeProcessMetrics?: boolean;
  readonly version?: string;
}

export class GatewayMetrics {
  /** Every metric of this gateway, handed to a prom-client registry at the first scrape. */
  readonly #metrics: RegistryMetric[] = [];
  #registry: Promise<Registry> | undefined;
  readonly #live: LiveStateSource;
  readonly #requests: LabeledCounter;
  readonly #attempts: LabeledCounter;
  readonly #failovers: LabeledCounter;
  readonly #skips: LabeledCounter;
  readonly #continuations: LabeledCounter;
  readonly #earlyCommits: LabeledCounter;
  readonly #answersNotKept: LabeledCounter;
  readonly #traceSpansDropped: LabeledCounter;
  readonly #tokens: LabeledCounter;
  readonly #clientRequests: LabeledCounter;
  readonly #batchRequests: LabeledCounter;
  readonly #cacheLookups: LabeledCounter;
  readonly #clientTokens: LabeledCounter;
  readonly #duration: LabeledHistogram;
  readonly #timeToHeaders: LabeledHistogram;
  readonly #timeToFirstToken: LabeledHistogram;
  readonly #overhead: LabeledHistogram;
  readonly #queueWait: LabeledHistogram;

  // Long on purpose: it declares every metric, one after another, so the whole set can be read (and checked
  // against docs/metrics.md) in one place.
  constructor(live: LiveStateSource, options: MetricsOptions = {}) {
    this.#live = live;
    const counter = (name: string, help: string, labelNames: string[]) => {
      const metric = new LabeledCounter(`${METRIC_PREFIX}${name}`, help, labelNames);
      this.#metrics.push(metric);
      return metric;
    };
    this.#requests = counter(
      "requests_total",
      "Completed requests by endpoint, client protocol, model asked for, answering provider and upstream model, and status class.",
      ["endpoint", "protocol", "model", "provider", "upstream_model", "status_class"],
    );
    this.#attempts = counter(
      "attempts_total",
      "Upstream attempts by provider, upstream model, outcome and role (primary or continuation).",
      ["provider", "upstream_model", "outcome", "role"],
    );
    this.#failovers = counter(
      "failovers_total",
      "Failed attempts after which the request moved on to another candidate, by the failed one and its outcome.",
      ["provider", "upstream_model", "outcome"],
    );
    this.#skips = counter(
      "route_skips_total",
      "Candidates left out of a route (cooldown and budget skips are upstream 429s avoided; circuit_open and invalid_key are not), by cause.",
      ["cause"],
    );
    this.#continuations = counter(
      "stream_continuations_total",
      "Broken streams continued on another upstream, by the continuing provider, upstream model and mode.",
      ["provider", "upstream_model", "mode"],
    );
    this.#earlyCommits = counter(
      "stream_early_commits_total",
      "Streams whose response head went out before their answer started, kept alive meanwhile (server.stream_keepalive_ms), by endpoint.",
      ["endpoint"],
    );
    this.#answersNotKept = counter(
      "answers_not_kept_total",
      "Answers sent whose keeping failed (a Responses answer for previous_response_id: the store down, or past responses.store.write_timeout_ms), by endpoint.",
      ["endpoint"],
    );
    this.#traceSpansDropped = counter(
      "trace_spans_dropped_total",
      "Trace spans never sent to the OTLP collector, by reason: queue_full (traces.max_queue_spans) or export_failed.",
      ["reason"],
    );
    // `source`: `reported` (the provider's usage) or `estimated` (the gateway's count, where the provider reported
    // none): two values, so that a dashboard can tell billed counts from estimates without a second metric.
    this.#tokens = counter(
      "tokens_total",
      "Tokens in (prompt) and out (completion) by provider, upstream model and source (reported by the provider, or the gateway's estimate).",
      ["direction", "provider", "upstream_model", "source"],
    );
    this.#cacheLookups = counter(
      "cache_lookups_total",
      "Requests the answer cache was asked for (cache.enabled), by result: hit (answered without an upstream call) or miss.",
      ["result"],
    );
    // By client (`server.api_keys` entries `{ key, name }`): the names come from the config, so they are bounded.
    this.#clientRequests = counter(
      "client_requests_total",
      "Completed requests by client (the name of the key it carried; `none`: an unnamed key, or no key) and status class.",
      ["client", "status_class"],
    );
    // Batch lines (`/v1/batches`) apart from live requests: a line may have waited on purpose for a limit, and
    // thousands of them an hour would read as live traffic. Two labels only: the batch id is in the request log.
    this.#batchRequests = counter(
      "batch_requests_total",
      "Completed batch lines (/v1/batches), by endpoint and status class; not in requests_total, client_requests_total nor the latency histograms.",
      ["endpoint", "status_class"],
    );
    this.#clientTokens = counter(
      "client_tokens_total",
      "Tokens in (prompt) and out (completion) by client (as client_requests_total) and source (as tokens_total).",
      ["direction", "client", "source"],
    );
    const histogram = (name: string, help: string, labelNames: string[], buckets: number[]) => {
      const metric = new LabeledHistogram(`${METRIC_PREFIX}${name}`, help, labelNames, buckets);
      this.#metrics.push(metric);
      return metric;
    };
    this.#duration = histogram(
      "request_duration_seconds",
      "Whole request, arrival to last byte, by endpoint and answering provider.",
      ["endpoint", "provider"],
      LATENCY_BUCKETS_S,
    );
    this.#timeToHeaders = histogram(
      "time_to_headers_seconds",
      "Arrival to response headers (JSON: to the whole answer), by endpoint and answering provider.",
      ["endpoint", "provider"],
      LATENCY_BUCKETS_S,
    );
    this.#timeToFirstToken = histogram(
      "time_to_first_token_seconds",
      "Streams: arrival to the first content event written to the client, by endpoint and answering provider.",
      ["endpoint", "provider"],
      LATENCY_BUCKETS_S,
    );
    this.#overhead = histogram(
      "overhead_seconds",
      "Time to headers minus the time spent waiting for upstreams and in the queue: the gateway's own time.",
      ["endpoint"],
      OVERHEAD_BUCKETS_S,
    );
    this.#queueWait = histogram(
      "queue_wait_seconds",
      "Requests that waited (queued for a free candidate, or for a better cooling one), by endpoint.",
      ["endpoint"],
      LATENCY_BUCKETS_S,
    );
    this.#metrics.push(...liveMetrics(live));
    const version = options.version;
    if (version !== undefined) {
      this.#metrics.push(
        new LiveMetric(`${METRIC_PREFIX}build_info`, "Always 1; the gateway version as a label.", "gauge", () => [
          [{ version }, 1],
        ]),
      );
    }
    this.#isProcessIncluded = options.includeProcessMetrics !== false;
  }

  readonly #isProcessIncluded: boolean;

  /** The record subscriber. Never throws: a metrics bug must not fail a request. */
  readonly observe = (record: RequestRecord): void => {
    try {
      this.#observe(record);
    } catch {
      // ignored on purpose (see above)
    }
  };

  /**
   * Answers lost by the store after their records were published as kept (the state file's answers waiting for its
   * lock, past the memory bounds): counted as a record marked not kept is.
   */
  countAnswersLost(endpoint: string, count: number): void {
    this.#answersNotKept.inc([endpoint], count);
  }

  /** Spans the OTLP exporter dropped (observability/otlp-traces.ts): a collector down, slow, or refusing them. */
  countTraceSpansDropped(reason: "queue_full" | "export_failed", count: number): void {
    this.#traceSpansDropped.inc([reason], count);
  }

  /**
   * Prometheus text exposition. prom-client (~45 ms of start-up and several MB) is loaded at the first scrape,
   * not at start: a gateway nobody scrapes never loads it.
   */
  async render(): Promise<{ contentType: string; body: string }> {
    this.#registry ??= this.#createRegistry();
    const registry = await this.#registry;
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  async #createRegistry(): Promise<Registry> {
    const { Registry: PromRegistry, collectDefaultMetrics } = await import("prom-client");
    const own = new PromRegistry();
    for (const metric of this.#metrics) registerIn(own, metric);
    if (!this.#isProcessIncluded) return own;
    // The default process metrics, once per process: they describe the process, not one gateway, and each
    // collection registers observers (GC, event loop) that are never removed, so tests starting many gateways in
    // one process must not create them again and again.
    sharedProcessRegistry ??= (() => {
      const shared = new PromRegistry();
      collectDefaultMetrics({ register: shared, prefix: METRIC_PREFIX });
      return shared;
    })();
    return PromRegistry.merge([sharedProcessRegistry, own]);
  }

  #observe(record: RequestRecord): void {
    const names = this.#live.knownNames();
    const endpoint = oneOf(record.endpoint, ENDPOINTS);
    const served = record.servedBy;
    const provider = served === undefined ? NONE : oneOf(served.provider, names.providers);
    const upstreamModel = served === undefined ? NONE : oneOf(served.model, names.upstreamModels);
    const recordClass = statusClassOf(record);
    // A batch line counts apart, and stays out of the live latency below; its attempts and tokens are the
    // upstreams' load like any other.
    const isBatchLine = record.batchId !== undefined;
    // Label values in the order of each metric's label names (see the constructor).
    if (isBatchLine) this.#batchRequests.inc([endpoint, recordClass]);
    else {
      this.#requests.inc([
        endpoint,
        oneOf(record.clientProtocol, PROTOCOLS),
        oneOf(record.requestedModel, names.models),
        provider,
        upstreamModel,
        recordClass,
      ]);
    }
    this.#observeAttempts(record.attempts, names);
    for (const skip of record.skips) this.#skips.inc([skipCause(skip)]);
    for (const continuation of record.continuations) {
      this.#continuations.inc([
        oneOf(continuation.provider, names.providers),
        oneOf(continuation.model, names.upstreamModels),
        continuation.mode,
      ]);
    }
    if (record.cache !== undefined) this.#cacheLookups.inc([record.cache]);
    if (record.earlyCommitMs !== undefined) this.#earlyCommits.inc([endpoint]);
    if (record.isAnswerNotKept === true) this.#answersNotKept.inc([endpoint]);
    const client = record.client ?? NONE;
    if (!isBatchLine) this.#clientRequests.inc([client, recordClass]);
    observeProviderTokens(this.#tokens, record, names, [provider, upstreamModel]);
    const source = record.isUsageEstimated === true ? ESTIMATED : REPORTED;
    // A client's tokens are the answer's as it was told them (a continued stream's combined usage).
    if (served !== undefined) {
      if (record.tokensIn > 0) this.#clientTokens.inc(["in", client, source], record.tokensIn);
      if (record.tokensOut > 0) this.#clientTokens.inc(["out", client, source], record.tokensOut);
    }
    if (isBatchLine) return;
    const timing = [endpoint, provider];
    this.#duration.observe(timing, record.durationMs / 1000);
    if (record.timeToHeadersMs !== undefined) this.#timeToHeaders.observe(timing, record.timeToHeadersMs / 1000);
    if (record.timeToFirstTokenMs !== undefined) {
      this.#timeToFirstToken.observe(timing, record.timeToFirstTokenMs / 1000);
    }
    const overheadMs = gatewayOverheadMs(record);
    if (overheadMs !== undefined) this.#overhead.observe([endpoint], overheadMs / 1000);
    if (record.queueWaitMs > 0) this.#queueWait.observe([endpoint], record.queueWaitMs / 1000);
  }

  #observeAttempts(attempts: readonly RecordedAttempt[], names: KnownNames): void {
    let previous: RecordedAttempt | undefined;
    for (const attempt of attempts) {
      const attemptProvider = oneOf(attempt.provider, names.providers);
      const attemptModel = oneOf(attempt.model, names.upstreamModels);
      this.#attempts.inc([attemptProvider, attemptModel, oneOf(attempt.outcome, OUTCOME_NAMES), attempt.role]);
      if (attempt.role !== "primary") continue;
      // A failed primary attempt followed by a primary on another candidate is a failover (one on the same
      // candidate is a retry).
      if (previous !== undefined && previous.deploymentKey !== attempt.deploymentKey) {
        this.#failovers.inc([
          oneOf(previous.provider, names.providers),
          oneOf(previous.model, names.upstreamModels),
          oneOf(previous.outcome, OUTCOME_NAMES),
        ]);
      }
      previous = traitsOf(attempt.outcome).isSuccess ? undefined : attempt;
    }
  }
}

const OUTCOME_NAMES: ReadonlySet<string> = new Set(Object.keys(OUTCOMES));

let sharedProcessRegistry: Registry | undefined;

/**
 * `cooldown` stays the label of a rate-limit cooldown (an upstream 429 avoided, with `budget`); a candidate the plan
 * left out for an open circuit or a refused key is labelled with that cause instead, so the 429s-avoided reading
 * of the label stays true.
 */
function skipCause(skip: RecordedSkip): string {
  if (skip.phase !== "plan") return "attempt";
  if (skip.cause === "cooldown" && skip.isLimit === false) return oneOf(skip.cooldownCause ?? OTHER, PLAN_SKIP_CAUSES);
  return oneOf(skip.cause, PLAN_SKIP_CAUSES);
}

/** The label values of the five classes, made once: a label built per record is a new string to hash per record. */
const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"];

export function statusClass(status: number): string {
  if (status >= 100 && status < 600) return STATUS_CLASSES[Math.floor(status / 100) - 1] ?? OTHER;
  return OTHER;
}

/**
 * A record's `status_class`: its status's class, or the outcome of a request that ended as its client asked
 * (`not_cached`: an `only-if-cached` miss is a 504 no dashboard or alert on 5xx should count).
 */
export function statusClassOf(record: RequestRecord): string {
  return traitsOf(record.outcome).isClientsChoice ? record.outcome : statusClass(record.status);
}

/**
 * The gateway's own share of the time to headers: that time minus the queue wait and what the upstreams took
 * before the answer started (every failed primary attempt whole, the answering one to its first content event).
 * A stream's response head goes out only once its upstream sent a first content event (the gateway holds it back
 * so that a stream failing before any content can still fail over), so the upstream's time to first token is
 * upstream time too; an attempt recorded without one falls back to its headers, then to its whole duration.
 */
export function gatewayOverheadMs(record: RequestRecord): number | undefined {
  if (record.timeToHeadersMs === undefined) return undefined;
  let upstreamMs = 0;
  for (const attempt of record.attempts) {
    if (attempt.role !== "primary") continue;
    const isAnswer = traitsOf(attempt.outcome).isSuccess || attempt.deploymentKey === record.servedBy?.deploymentKey;
    upstreamMs +=
      isAnswer && record.isStream
        ? (attempt.firstTokenMs ?? attempt.headersMs ?? attempt.durationMs)
        : attempt.durationMs;
  }
  return Math.max(0, record.timeToHeadersMs - upstreamMs - record.queueWaitMs);
}
