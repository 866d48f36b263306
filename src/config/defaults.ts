// Every default value, with its unit. Documented in docs/configuration.md; keep the two in step.

export const DEFAULT_CONFIG_PATH = "config/meta-providers.yaml";

export const SERVER_DEFAULTS = {
  port: 12345,
  host: "127.0.0.1",
  /** 20 MB: long chat histories with images fit; anything larger is almost certainly a mistake. */
  bodyLimitBytes: 20 * 1024 * 1024,
  /** On SIGTERM, in-flight requests and streams get this long (ms) to finish before sockets are closed. */
  shutdownTimeoutMs: 10_000,
  logLevel: "info",
  /** Pages served from any port on this machine may call the gateway from a browser; add your own origins. */
  corsOrigins: ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"],
} as const;

export const RESPONSES_STORE_DEFAULTS = {
  /** Responses kept for `previous_response_id` / `item_reference` (count). */
  maxEntries: 10_000,
  /** Bytes of kept responses (their JSON, UTF-8), each holding its whole conversation: 64 MiB. */
  maxBytes: 64 * 1024 * 1024,
  /** ms a kept response stays usable: 24 h. */
  maxAgeMs: 24 * 3_600_000,
} as const;

export const PROVIDER_DEFAULTS = {
  basePriority: 1,
  /** ms until response headers; past it the attempt failed. */
  timeoutMs: 30_000,
  /** ms from the response headers to the first content chunk of a stream. */
  firstTokenTimeoutMs: 15_000,
  /** ms of silence mid-stream before it counts as stalled. */
  streamIdleTimeoutMs: 30_000,
  /** extra attempts on the same candidate for transient errors (5xx, connection reset). */
  retries: 1,
  rateLimitDialect: "generic",
  injectStreamUsage: true,
  countMaxTokens: true,
} as const;

export const ROUTING_DEFAULTS = {
  /** Upstream attempts per request, over every candidate and retry. */
  maxAttempts: 6,
  /** ms a request may spend before its response starts (JSON: whole response) across all attempts and waits. */
  totalTimeoutMs: 120_000,
  /** ms a committed stream may last in total. */
  maxStreamDurationMs: 600_000,
  /** ms the gateway will wait for a cooling better candidate instead of falling back (see docs/routing.md). */
  maxWaitForBetterMs: 2_000,
  /** Waiting is worth it only if the best ready candidate scores below this fraction of the cooling one. */
  waitScoreRatio: 0.8,
  strategy: "best",
  /** ms to queue when every candidate is unavailable; 0 answers 429 at once. */
  queueTimeoutMs: 0,
  /** Requests allowed to wait in that queue at once; beyond it, 429 at once. */
  maxQueued: 100,
  /** ms a session keeps its deployment; 0 turns sticky routing off. */
  stickyTtlMs: 0,
} as const;

export const STATE_DEFAULTS = {
  path: "data/state.db",
  redisKeyPrefix: "llm-gateway:",
  /** ms between batched writes to the embedded store: a crash loses at most this much accounting. */
  flushIntervalMs: 1_000,
} as const;

export const COOLDOWN_DEFAULTS = {
  /** ms of the first cooldown after a 429 without any retry hint; doubles per consecutive 429. */
  rateLimitBaseMs: 1_000,
  /** ms cap of that exponential backoff. */
  rateLimitMaxMs: 60_000,
  /** ms a provider is parked after a 401/403 (bad key): one hour. */
  invalidKeyMs: 3_600_000,
  /** consecutive 5xx/timeout/connection failures that open a candidate's circuit. */
  failureThreshold: 3,
  /** ms window in which those failures must fall. */
  failureWindowMs: 60_000,
  /** ms an open circuit stays open before a single probe request is let through. */
  circuitOpenMs: 30_000,
} as const;

export const DISCOVERY_DEFAULTS = {
  cacheDir: "data/cache",
  /** ms after which a cached model list is refreshed: 24 h. */
  maxAgeMs: 24 * 3_600_000,
  /** ms for one GET /models call at startup. */
  timeoutMs: 8_000,
} as const;
