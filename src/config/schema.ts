// The config file's shape, its defaults (each with its unit) and the resolved camelCase settings it turns into.
// Keys keep the original Python project's vocabulary (`providers`, `base_url`, `api_key_env_var`, `model_url`,
// `base_priority`) so its users' files load unchanged. Objects are strict: an unknown key is almost always a
// typo, and silently ignoring it would route traffic the user did not intend. docs/configuration.md documents
// every key; keep the two in step.
//
// Two stages, because of presets: a `providers:` entry is validated as written (`providerSchema`, nothing filled
// in, so that a preset's value is not masked by a default), merged with its preset, expanded into one provider
// per key by resolve-providers.ts, and only then resolved (`providerSettingsSchema`: defaults, camelCase). Every other section
// is resolved by `configSchema` itself.
import { z } from "zod";
import { parseDayReset, UTC_MIDNIGHT } from "./day-reset.ts";
import { scoringSchema, ZOD_CUSTOM_ISSUE } from "./scoring-schema.ts";

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

/** A value sent in an HTTP header: a CR or LF would split the header (undici refuses the request, every time). */
const headerSafe = z
  .string()
  .refine(
    (text) => !hasControlCharacter(text),
    "contains a control character (CR, LF, ...), which cannot be sent in an HTTP header; check the value or the .env line it came from",
  );

/**
 * An upstream URL. Credentials in it (`https://user:pass@host/v1`) are refused rather than dropped: the gateway
 * authenticates with the provider's key, and a Basic header from the URL would collide with it.
 */
const httpUrl = z
  .url({ protocol: /^https?$/ })
  .refine((url) => !hasControlCharacter(url), "contains a control character (CR, LF, ...)")
  .refine(
    (url) => URL.canParse(url) && new URL(url).username === "" && new URL(url).password === "",
    "credentials in the URL (user:pass@) are not supported: remove them and put the key in api_key or api_key_env_var",
  );

// ---------------------------------------------------------------------------------------------------------------
// A provider entry as written (in the config file or a preset file).

/** Budgets; any subset. Windows: s = second, m = minute, h = hour, d = day. */
const limitsSchema = z.strictObject({
  rps: positiveInt.optional(),
  rpm: positiveInt.optional(),
  rph: positiveInt.optional(),
  rpd: positiveInt.optional(),
  tpm: positiveInt.optional(),
  tph: positiveInt.optional(),
  tpd: positiveInt.optional(),
  tokens_per_month: positiveInt.optional(),
  concurrency: positiveInt.optional(),
  /** How the provider counts its second/minute/hour windows (docs/limits.md, "Window algorithms"); default sliding. */
  window: z.enum(["sliding", "fixed", "bucket"]).optional(),
  /** `fixed`: ms after the clock's second/minute/hour boundary at which the provider's windows start; default 0. */
  window_offset_ms: z.number().int().nonnegative().optional(),
  /** Where the window algorithm comes from (a documentation URL, "headers"): shown, never interpreted. */
  window_source: z.string().optional(),
});

const modelKindSchema = z.enum(["chat", "embedding", "audio", "image", "rerank", "moderation"]);

const modelSchema = z.strictObject({
  /** Upstream model id; default: the public name. */
  id: z.string().min(1).optional(),
  /** Added to the score; higher is preferred. Default 0 (see modelSettingsSchema). */
  priority: z.number().optional(),
  /** Context window, tokens. */
  context: positiveInt.optional(),
  /** Parameter count, billions. */
  params_b: z.number().positive().optional(),
  /** Leaderboard row name to use instead of the automatic match. */
  leaderboard_name: z.string().min(1).optional(),
  tools: z.boolean().optional(),
  vision: z.boolean().optional(),
  json_schema: z.boolean().optional(),
  /** Whether the model accepts an assistant prefill (stream continuation). */
  prefill: z.boolean().optional(),
  /** Which endpoint family the model serves; default guessed from its id. */
  kind: modelKindSchema.optional(),
  limits: limitsSchema.optional(),
});

const headerValue = z.union([z.string(), z.number()]).transform(String).pipe(headerSafe);

/** Extra headers sent upstream: valid names (RFC 9110 tokens) and values without control characters. */
const headersSchema = z.record(z.string(), headerValue).superRefine((headers, context) => {
  for (const name of Object.keys(headers)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      context.addIssue({ code: ZOD_CUSTOM_ISSUE, path: [name], message: "not a valid HTTP header name" });
    }
  }
});

/** A JavaScript regular expression, searched case-insensitively in upstream model ids. */
const idPattern = z.string().min(1).refine(isValidPattern, "not a valid regular expression (JavaScript syntax)");
const idPatterns = z.union([idPattern, z.array(idPattern).min(1)]);

/**
 * What is known about one upstream model (usually from a provider preset), keyed by its upstream id. Applied to
 * discovered and configured models alike; a field set under `models:` wins over it.
 */
const knownModelSchema = z.strictObject({
  /** Context window, tokens. */
  context: positiveInt.optional(),
  /** Parameter count, billions. */
  params_b: z.number().positive().optional(),
  tools: z.boolean().optional(),
  vision: z.boolean().optional(),
  json_schema: z.boolean().optional(),
  prefill: z.boolean().optional(),
  kind: modelKindSchema.optional(),
  /** The model's own free-tier budgets (the provider's `limits` are the account-wide pool). */
  limits: limitsSchema.optional(),
});

/** `"00:00"`, `"07:30 UTC"`, `"00:00 America/Los_Angeles"`: when daily and monthly windows reset. */
const dayResetText = z.string().superRefine((text, context) => {
  try {
    parseDayReset(text);
  } catch (error) {
    context.addIssue((error as Error).message);
  }
});

export const providerSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "letters, digits, '.', '_' and '-' only (it appears in model names)")
    .optional(),
  preset: z.string().min(1).optional(),
  enabled: z.boolean().optional(),
  base_url: httpUrl.optional(),
  api_key_env_var: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  /** Other names for the first `api_key_env_var` (GOOGLE_API_KEY for GEMINI_API_KEY): the first one set stands in. */
  api_key_env_var_aliases: z.array(z.string().min(1)).min(1).optional(),
  api_key: headerSafe.optional(),
  /** Variables besides the key that must be set (an account id in the URL); unset, the provider is skipped. */
  required_env_vars: z.array(z.string().min(1)).min(1).optional(),
  /** Base for `GET {model_url}/models`; taken as the list URL itself when its path ends in /models or it has a query. */
  model_url: httpUrl.optional(),
  base_priority: z.number().nonnegative().optional(),
  timeout_ms: positiveInt.optional(),
  first_token_timeout_ms: positiveInt.optional(),
  stream_idle_timeout_ms: positiveInt.optional(),
  retries: nonNegativeInt.max(5).optional(),
  /** Requests in flight to this provider at once; more wait for a slot (docs/streaming.md, "Upstream limits"). */
  max_in_flight: positiveInt.optional(),
  headers: headersSchema.optional(),
  models: z.record(z.string().min(1), modelSchema.nullable()).optional(),
  rate_limit_dialect: z.string().min(1).optional(),
  limits: limitsSchema.optional(),
  day_reset: dayResetText.optional(),
  inject_stream_usage: z.boolean().optional(),
  count_max_tokens: z.boolean().optional(),
  known_models: z.record(z.string().min(1), knownModelSchema).optional(),
  /** Discovered models are kept only when their upstream id matches one of these (e.g. OpenRouter's `:free$`). */
  discovery_include: idPatterns.optional(),
  /** Discovered models whose upstream id matches one of these are dropped. */
  discovery_exclude: idPatterns.optional(),
  /** Which field of a /models entry is the model id; default `id`, then `name`. */
  discovery_id_field: z.enum(["id", "name"]).optional(),
  /** Removed from the front of discovered ids (Gemini lists `models/gemini-2.5-flash`). */
  discovery_id_strip_prefix: z.string().min(1).optional(),
});

// ---------------------------------------------------------------------------------------------------------------
// A provider resolved: one key, preset merged, defaults applied, camelCase.

/** Budgets resolved: the same windows, camelCase (`tokensPerMonth`). */
const limitsSettingsSchema = limitsSchema.transform(camelKeys);

const modelSettingsSchema = z
  .object({
    ...modelSchema.shape,
    priority: modelSchema.shape.priority.default(0), // points added to the score
    limits: limitsSettingsSchema.optional(),
  })
  .transform(({ context, ...rest }) => ({ ...camelKeys(rest), contextTokens: context }));

const knownModelSettingsSchema = z
  .object({ ...knownModelSchema.shape, limits: limitsSettingsSchema.optional() })
  .transform(({ context, ...rest }) => ({ ...camelKeys(rest), contextTokens: context }));

const raw = providerSchema.shape;

/**
 * The fields of ProviderSettings. Built from a validated, preset-merged entry plus the provider's name and its
 * one key; the fields resolve-providers.ts has already used (`preset`, `enabled`, `api_key_env_var`, ...) are stripped.
 */
export const providerSettingsSchema = z
  .object({
    name: z.string().min(1),
    base_url: httpUrl,
    /** The key, never logged. Exactly one: an entry with several keys becomes one provider per key. */
    api_key: headerSafe,
    model_url: raw.model_url,
    base_priority: raw.base_priority.default(1), // factor multiplying the model's score
    timeout_ms: raw.timeout_ms.default(30_000), // ms until response headers; past it the attempt failed
    first_token_timeout_ms: raw.first_token_timeout_ms.default(15_000), // ms from the headers to the first content chunk
    stream_idle_timeout_ms: raw.stream_idle_timeout_ms.default(30_000), // ms of silence mid-stream = stalled
    retries: raw.retries.default(1), // extra attempts on the same candidate for 5xx / connection resets
    max_in_flight: raw.max_in_flight.default(128), // requests in flight at once; more wait for a slot, not in the HTTP pool
    headers: raw.headers.default({}), // none besides content-type, accept and authorization
    /** Configured models; unset means "discover them from GET /models". */
    models: z
      .record(
        z.string(),
        z.preprocess((model) => model ?? {}, modelSettingsSchema),
      )
      .transform((models) =>
        Object.entries(models).map(([publicName, model]) => ({ ...model, publicName, id: model.id ?? publicName })),
      )
      .optional(),
    rate_limit_dialect: raw.rate_limit_dialect.default("generic"), // which rate-limit headers to read
    limits: limitsSettingsSchema.optional(),
    day_reset: dayResetText.optional().transform((text) => (text === undefined ? UTC_MIDNIGHT : parseDayReset(text))), // default 00:00 UTC
    inject_stream_usage: raw.inject_stream_usage.default(true), // ask for a usage chunk on streams
    count_max_tokens: raw.count_max_tokens.default(true), // charge max_tokens against token budgets up front
    /** By lower-cased upstream id. */
    known_models: z
      .record(z.string(), knownModelSettingsSchema)
      .default({})
      .transform((known) => Object.fromEntries(Object.entries(known).map(([id, model]) => [id.toLowerCase(), model]))),
    discovery_include: raw.discovery_include.transform(asList), // empty = keep all
    discovery_exclude: raw.discovery_exclude.transform(asList),
    discovery_id_field: raw.discovery_id_field, // unset: `id`, else `name`
    discovery_id_strip_prefix: raw.discovery_id_strip_prefix,
  })
  .transform(({ api_key, base_url, model_url, ...rest }) => ({
    ...camelKeys(rest),
    /** Without a trailing slash, e.g. `https://api.groq.com/openai/v1`. */
    baseUrl: stripTrailingSlash(base_url),
    modelUrl: stripTrailingSlash(model_url ?? base_url),
    /** A one-element list, so that code redacting secrets can treat it like any list of secrets. */
    apiKeys: [api_key] as [string],
  }));

// ---------------------------------------------------------------------------------------------------------------
// The other sections, resolved in one pass.

/** "" entries are unset `${VAR}`s: dropped. */
const clientKeys = z
  .array(z.string())
  .default([])
  .transform((keys) => keys.filter((key) => key !== ""));

const serverSchema = z
  .strictObject({
    port: z.number().int().min(0).max(65535).default(12345), // TCP port; $PORT wins
    host: z.string().min(1).default("127.0.0.1"), // listen address; $HOST wins
    api_keys: clientKeys, // client bearer tokens (plus $ALLOWED_BEARER_TOKENS); none = no auth
    admin_keys: clientKeys, // bearer tokens for /admin routes
    body_limit_bytes: positiveInt.default(20 * 1024 * 1024), // bytes: 20 MB fits long histories with images
    shutdown_timeout_ms: positiveInt.default(10_000), // ms in-flight work gets after SIGTERM
    log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    // origins browsers may call from (CORS): exact, `*`, or `scheme://host:*` (any port); default: this machine
    cors_origins: z.array(z.string().min(1)).default(["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]),
    request_timeout_ms: positiveInt.default(60_000), // ms to receive a whole request, body included (20 MB needs > 2.7 Mbit/s)
    headers_timeout_ms: positiveInt.default(10_000), // ms to receive the request headers
    max_connections: positiveInt.default(1024), // open client connections; keep below `ulimit -n` minus upstream sockets
    // Host header names accepted (no port); "*" accepts any. Default: loopback names when bound to loopback (DNS rebinding).
    allowed_hosts: z
      .array(z.string().min(1))
      .min(1)
      .transform((names) => names.map((name) => name.toLowerCase()))
      .optional(),
  })
  .prefault({})
  .transform(camelKeys);

const metaModelFilterSchema = z.strictObject({
  leaderboard: z.string().optional(),
  min_context: positiveInt.optional(), // tokens
  min_params_b: z.number().positive().optional(), // billions
  providers: z.array(z.string()).optional(),
  tools: z.boolean().optional(),
  vision: z.boolean().optional(),
  include: z.array(z.string()).optional(),
});

const metaModelSchema = z.union([
  z
    .array(z.string().min(1))
    .min(1)
    .transform((names) => ({ kind: "list" as const, names })),
  metaModelFilterSchema.transform((filter) => ({ kind: "filter" as const, filter: camelKeys(filter) })),
]);

const routingSchema = z
  .strictObject({
    max_attempts: positiveInt.max(50).default(6), // upstream attempts per request, over every candidate and retry
    total_timeout_ms: positiveInt.default(120_000), // ms before the response starts (JSON: whole response)
    max_stream_duration_ms: positiveInt.default(600_000), // ms a committed stream may last
    max_wait_for_better_ms: nonNegativeInt.default(2_000), // ms to wait for a cooling better candidate
    wait_score_ratio: z.number().min(0).max(1).default(0.8), // fraction: wait only if the ready one scores below it
    strategy: z.enum(["best", "spread"]).default("best"),
    queue_timeout_ms: nonNegativeInt.default(0), // ms to queue when every candidate is busy; 0 = 429 at once
    max_queued: nonNegativeInt.default(100), // requests waiting in that queue at once
    sticky_ttl_ms: nonNegativeInt.default(0), // ms a session keeps its deployment; 0 = sticky routing off
  })
  .prefault({})
  .transform(camelKeys);

const cooldownsSchema = z
  .strictObject({
    rate_limit_base_ms: positiveInt.default(1_000), // ms of the first cooldown after a hint-less 429; doubles
    rate_limit_max_ms: positiveInt.default(60_000), // ms cap of that backoff
    invalid_key_ms: positiveInt.default(3_600_000), // ms a provider is parked after a 401/403: one hour
    failure_threshold: positiveInt.default(3), // consecutive failures that open a candidate's circuit
    failure_window_ms: positiveInt.default(60_000), // ms window those failures must fall in
    circuit_open_ms: positiveInt.default(30_000), // ms cap of the pause between probes of an open circuit
    circuit_first_probe_ms: positiveInt.default(2_000), // ms from a circuit's opening to its first probe; doubles
  })
  .prefault({})
  .transform(camelKeys);

const discoverySchema = z
  .strictObject({
    cache_dir: z.string().min(1).default("data/cache"), // directory of cached /models answers
    max_age_ms: positiveInt.default(24 * 3_600_000), // ms before a cached model list is refetched: 24 h
    timeout_ms: positiveInt.default(8_000), // ms for one GET /models call at startup
  })
  .prefault({})
  .transform(camelKeys);

const stateSchema = z
  .strictObject({
    path: z.string().min(1).default("data/state.db"), // embedded store file; ":memory:" keeps state in memory
    redis_url: z
      .string()
      .regex(/^rediss?:\/\//, "must start with redis:// or rediss://")
      .optional(), // set: budgets and cooldowns shared with other gateways
    redis_key_prefix: z.string().default("llm-gateway:"),
    redis_cluster: z.boolean().default(false), // `redis_url` is one node of a Redis Cluster (the others are discovered)
    flush_interval_ms: positiveInt.default(1_000), // ms between batched writes: what a crash can lose
  })
  .prefault({})
  .transform(camelKeys);

/** Bounds on what an upstream may send; past one, the attempt or stream fails (never blaming the key). */
const upstreamLimitsSchema = z
  .strictObject({
    max_response_bytes: positiveInt.default(64 * 1024 * 1024), // bytes of a 2xx JSON body (64 MiB); larger = bad_response
    max_error_body_bytes: positiveInt.default(1024 * 1024), // bytes of an error body read to classify it (1 MiB)
    max_stream_event_chars: positiveInt.default(4 * 1024 * 1024), // characters of one SSE line or event (4 Mi)
    max_retained_stream_chars: nonNegativeInt.default(1024 * 1024), // characters kept for continuation (1 Mi)
  })
  .prefault({})
  .transform(camelKeys);

/** The in-memory store of Responses API answers (`store`, `previous_response_id`, `item_reference`). */
const responsesSchema = z
  .strictObject({
    store: z
      .strictObject({
        max_entries: nonNegativeInt.default(10_000), // responses kept; 0 keeps none
        max_bytes: nonNegativeInt.default(64 * 1024 * 1024), // bytes of kept JSON (each holds its conversation): 64 MiB
        max_age_ms: positiveInt.default(24 * 3_600_000), // ms a kept response stays usable: 24 h
      })
      .prefault({})
      .transform(camelKeys),
  })
  .prefault({});

const logSchema = z
  .strictObject({
    format: z.enum(["auto", "pretty", "json"]).default("auto"), // auto: pretty on a terminal, JSON lines otherwise
    content: z.boolean().default(false), // keep message content in the request log (never keys)
  })
  .prefault({})
  .transform(camelKeys);

const requestLogSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    max_entries: positiveInt.default(10_000), // newest requests kept
    max_age_ms: positiveInt.default(7 * 24 * 3_600_000), // ms a request is kept: 7 days
    file: z.string().min(1).optional(), // also append every request as a JSON line to this file
  })
  .prefault({})
  .transform(camelKeys);

const metricsSchema = z
  .strictObject({
    enabled: z.boolean().default(true), // GET /metrics
  })
  .prefault({})
  .transform(camelKeys);

const tracesSchema = z
  .strictObject({
    otlp_endpoint: httpUrl.optional(), // OTLP/HTTP base URL; $OTEL_EXPORTER_OTLP_ENDPOINT wins
  })
  .prefault({})
  .transform(camelKeys);

export const configSchema = z
  .strictObject({
    server: serverSchema,
    providers: z.array(providerSchema).default([]),
    meta_models: z.record(z.string().min(1), metaModelSchema).default({}),
    routing: routingSchema,
    cooldowns: cooldownsSchema,
    discovery: discoverySchema,
    scoring: scoringSchema,
    state: stateSchema,
    upstream_limits: upstreamLimitsSchema,
    responses: responsesSchema,
    log: logSchema,
    request_log: requestLogSchema,
    metrics: metricsSchema,
    traces: tracesSchema,
  })
  .transform(({ meta_models, request_log, upstream_limits, ...rest }) => ({
    ...rest,
    metaModels: meta_models,
    requestLog: request_log,
    upstreamLimits: upstream_limits,
  }));

/** What a config file (or a built-in config) may contain, before validation. */
export type RawConfig = z.input<typeof configSchema>;
/** One `providers:` entry, validated as written (no defaults). */
export type RawProvider = z.output<typeof providerSchema>;
export type RawKnownModel = z.output<typeof knownModelSchema>;

// ---------------------------------------------------------------------------------------------------------------

type CamelCase<Key extends string> = Key extends `${infer Head}_${infer Tail}`
  ? `${Head}${Capitalize<CamelCase<Tail>>}`
  : Key;

type CamelKeys<T> = { [Key in keyof T as Key extends string ? CamelCase<Key> : Key]: T[Key] };

/** `{ max_attempts: 6 }` -> `{ maxAttempts: 6 }`, one level deep (nested objects are resolved by their schema). */
function camelKeys<T extends object>(value: T): CamelKeys<T> {
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [
      key.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase()),
      item,
    ]),
  ) as CamelKeys<T>;
}

/** C0 controls except tab, and DEL (a loop, not a regular expression with control characters in it). */
export function hasControlCharacter(text: string): boolean {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return true;
  }
  return false;
}

function asList(value: string | readonly string[] | undefined): string[] {
  return value === undefined ? [] : typeof value === "string" ? [value] : [...value];
}

function stripTrailingSlash(url: string): string {
  return url.endsWith("/") ? url.slice(0, -1) : url;
}

function isValidPattern(pattern: string): boolean {
  try {
    new RegExp(pattern, "i");
    return true;
  } catch {
    return false;
  }
}
