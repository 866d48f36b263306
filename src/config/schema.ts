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
import { redactKeyShaped } from "../errors/redact.ts";
import { limitsSettingsSchema, providerSchema } from "./provider-schema.ts";
import { camelKeys, httpUrl, MAX_TIMER_MS, nonNegativeInt, positiveInt, timerMs } from "./schema-helpers.ts";
import { scoringSchema, ZOD_CUSTOM_ISSUE } from "./scoring-schema.ts";

export { providerSchema, providerSettingsSchema, type RawKnownModel, type RawProvider } from "./provider-schema.ts";
export { hasControlCharacter } from "./schema-helpers.ts";

// ---------------------------------------------------------------------------------------------------------------
// The other sections, resolved in one pass.

/** "" entries are unset `${VAR}`s: dropped. */
const clientKeys = z
  .array(z.string())
  .default([])
  .transform((keys) => keys.filter((key) => key !== ""));

/** When paid models may be tried: `routing.paid`, and a named client's own `paid`. */
const paidPolicy = z.enum(["never", "last_resort", "allowed"]);

/**
 * A client key, or `{ key, name }`: the name is what the request log, the `routed` line and the per-client metrics
 * say for the requests made with that key (two keys may share a name: a client's old and new key while it rotates).
 * Names go into metric labels, so they are short plain tokens. An entry whose key is "" (an unset `${VAR}`) is dropped.
 */
const namedClientKeys = z
  .array(
    z.union([
      z.string(),
      z.strictObject({
        key: z.string(),
        // budgets of the client's own, shared by every key of its name (docs/limits.md "Client budgets")
        // (audio seconds are counted per provider and model only: `ash`/`asd` on a client would count nothing)
        limits: limitsSettingsSchema
          .refine((limits) => limits.ash === undefined && limits.asd === undefined, {
            error:
              "`ash` and `asd` are provider and model budgets (audio seconds); a client's budgets count requests and tokens",
          })
          .optional(),
        // when this client's requests may go to paid models; default routing.paid (docs/routing.md)
        paid: paidPolicy.optional(),
        // the model names this client may use (as a client names them: public names, meta models, provider/name)
        models: z.array(z.string().min(1)).min(1).optional(),
        name: z
          .string()
          .regex(
            /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/,
            "1-64 letters, digits, '_', '.', '@' or '-', starting with a letter or digit",
          )
          // The metrics' label for requests of unnamed keys.
          .refine((name) => name !== "none", "`none` stands for unnamed keys in the metrics; choose another name"),
      }),
    ]),
  )
  .default([])
  .superRefine((entries, context) => {
    clientKeyIdentityIssues(entries, context);
    // A client's settings are its name's: each stated on one of its keys, applying to all of them.
    for (const setting of ["limits", "paid", "models"] as const) {
      const stated = new Set<string>();
      for (const [index, entry] of entries.entries()) {
        if (typeof entry === "string" || entry[setting] === undefined) continue;
        if (stated.has(entry.name)) {
          context.addIssue({
            code: ZOD_CUSTOM_ISSUE,
            path: [index, setting],
            message: `client \`${entry.name}\` has \`${setting}\` on another key already: state a client's ${setting} on one of its keys (it applies to all of them)`,
          });
        }
        stated.add(entry.name);
      }
    }
  })
  .transform((entries) => {
    const kept = entries
      .map((entry) => (typeof entry === "string" ? { key: entry, name: null } : entry))
      .filter((entry) => entry.key !== "");
    // Limits belong to the client (its name), not to one key: a key dropped as empty does not take them along.
    const limits: Record<string, z.output<typeof limitsSettingsSchema>> = {};
    const paid: Record<string, z.output<typeof paidPolicy>> = {};
    const models: Record<string, string[]> = {};
    for (const entry of entries) {
      if (typeof entry === "string") continue;
      if (entry.limits !== undefined) limits[entry.name] = entry.limits;
      if (entry.paid !== undefined) paid[entry.name] = entry.paid;
      if (entry.models !== undefined) models[entry.name] = entry.models;
    }
    return { keys: kept.map((entry) => entry.key), names: kept.map((entry) => entry.name), limits, paid, models };
  });

/**
 * Who a key is must be unambiguous: the key check takes a key's first entry, so a key listed again under another name
 * (or unnamed) would leave that entry's name, and its client's budgets, silently unused. A name is shown unredacted
 * (metric labels, the dashboard), so a name shaped like an API key, or equal to a key, is refused as a key pasted in
 * the wrong field; the request log would redact it besides, and `?client=` would not find its requests.
 */
function clientKeyIdentityIssues(
  entries: readonly (string | { readonly key: string; readonly name: string })[],
  context: z.RefinementCtx,
): void {
  const entryOf = new Map<string, { index: number; name: string | null }>();
  for (const [index, entry] of entries.entries()) {
    const key = typeof entry === "string" ? entry : entry.key;
    const name = typeof entry === "string" ? null : entry.name;
    if (key === "") continue;
    const first = entryOf.get(key);
    if (first === undefined) entryOf.set(key, { index, name });
    else if (first.name !== name) {
      const named = (client: string | null) => (client === null ? "unnamed" : `named \`${client}\``);
      context.addIssue({
        code: ZOD_CUSTOM_ISSUE,
        path: typeof entry === "string" ? [index] : [index, "key"],
        message: `the same key as entry ${first.index} (${named(first.name)}), here ${named(name)}: a key belongs to one client`,
      });
    }
  }
  for (const [index, entry] of entries.entries()) {
    if (typeof entry === "string") continue;
    const isKeyShaped = redactKeyShaped(entry.name) !== entry.name;
    if (isKeyShaped || entryOf.has(entry.name)) {
      context.addIssue({
        code: ZOD_CUSTOM_ISSUE,
        path: [index, "name"],
        message: `${isKeyShaped ? "looks like an API key" : "is one of the client keys"} (names are shown unredacted in metrics and on the dashboard): is a key in the name's place?`,
      });
    }
  }
}

const serverSchema = z
  .strictObject({
    port: z.number().int().min(0).max(65535).default(12345), // TCP port; $PORT wins
    host: z.string().min(1).default("127.0.0.1"), // listen address; $HOST wins
    // client bearer tokens, each a string or { key, name } (plus $ALLOWED_BEARER_TOKENS); none = no auth
    api_keys: namedClientKeys,
    admin_keys: clientKeys, // bearer tokens for /admin routes (and a /metrics scrape)
    body_limit_bytes: positiveInt.default(20 * 1024 * 1024), // bytes: 20 MB fits long histories with images
    shutdown_timeout_ms: positiveInt.default(10_000), // ms in-flight work gets after SIGTERM
    // ms of silence toward a streaming client before the gateway sends a keep-alive (and, before its answer starts,
    // the response head): proxies cut idle connections after 60 s (nginx, AWS ALB) or 100 s (Cloudflare). 0: off
    stream_keepalive_ms: nonNegativeInt.max(MAX_TIMER_MS).default(15_000),
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
  .transform(({ api_keys, ...server }) => ({
    ...camelKeys(server),
    apiKeys: api_keys.keys,
    /** Per entry of `apiKeys`, its client's name (null: unnamed). */
    apiKeyNames: api_keys.names,
    /** Budgets per client name (`limits` of a named entry). */
    clientLimits: api_keys.limits,
    /** `routing.paid` per client name (`paid` of a named entry). */
    clientPaid: api_keys.paid,
    /** The model names a client may use, per client name (`models` of a named entry); absent: every model. */
    clientModels: api_keys.models,
  }));

const metaModelFilterSchema = z.strictObject({
  leaderboard: z.string().optional(),
  min_context: positiveInt.optional(), // tokens
  min_params_b: z.number().positive().optional(), // billions
  providers: z.array(z.string()).optional(),
  tools: z.boolean().optional(),
  vision: z.boolean().optional(),
  include: z.array(z.string()).optional(),
});

const metaModelSchema = z.union(
  [
    z
      .array(z.string().min(1))
      .min(1)
      .transform((names) => ({ kind: "list" as const, names })),
    metaModelFilterSchema.transform((filter) => ({ kind: "filter" as const, filter: camelKeys(filter) })),
  ],
  {
    // zod's own message for a union is "Invalid input"; the usual mistake is a comma-separated string.
    error:
      "expected a list of model names (`best: [model-a, model-b]`) or a filter (`{ tools: true, min_context: 32000 }`)",
  },
);

const routingSchema = z
  .strictObject({
    max_attempts: positiveInt.max(50).default(6), // upstream attempts per request, over every candidate and retry
    total_timeout_ms: timerMs.default(120_000), // ms before the response starts (JSON: whole response)
    max_stream_duration_ms: timerMs.default(600_000), // ms a committed stream may last
    max_wait_for_better_ms: nonNegativeInt.default(2_000), // ms to wait for a cooling better candidate
    wait_score_ratio: z.number().min(0).max(1).default(0.8), // fraction: wait only if the ready one scores below it
    strategy: z.enum(["best", "spread"]).default("best"),
    queue_timeout_ms: nonNegativeInt.default(0), // ms to queue when every candidate is busy; 0 = 429 at once
    max_queued: nonNegativeInt.default(100), // requests waiting in that queue at once
    sticky_ttl_ms: nonNegativeInt.default(0), // ms a session keeps its deployment; 0 = sticky routing off
    paid: paidPolicy.default("last_resort"), // when paid models may be tried
  })
  .prefault({})
  .transform(camelKeys);

const cooldownsSchema = z
  .strictObject({
    rate_limit_base_ms: positiveInt.default(1_000), // ms of the first cooldown after a hint-less 429; doubles
    rate_limit_max_ms: positiveInt.default(60_000), // ms cap of that backoff
    invalid_key_ms: positiveInt.default(3_600_000), // ms a provider is parked after a 401/403: one hour
    model_unavailable_ms: positiveInt.default(900_000), // ms a deployment is left out after "no such model": 15 min
    // ms a deployment that refused a feature as not supported (tools, images, a parameter) is ranked last for
    // requests carrying it: 6 h
    unsupported_feature_ms: positiveInt.default(21_600_000),
    // ms a provider that answered an endpoint with a 405 or a router's 404 ("no such path") is left out for that
    // endpoint: 24 h (an API's set of routes changes with its releases, not by the minute)
    unserved_endpoint_ms: positiveInt.default(86_400_000),
    failure_threshold: positiveInt.default(3), // failures in the window that open a candidate's circuit (see below)
    failure_window_ms: positiveInt.default(60_000), // ms window those failures must fall in
    // fraction 0..1: failure_threshold failures in the window open the circuit, successes between them or not, when
    // they are at least this share of the window's verdicts (a provider failing every other request); 1 = rule off
    failure_rate_threshold: z.number().min(0).max(1).default(0.5),
    circuit_open_ms: positiveInt.default(30_000), // ms cap of the pause between probes of an open circuit
    circuit_first_probe_ms: positiveInt.default(2_000), // ms from a circuit's opening to its first probe; doubles
    suspect_single_flight: z.boolean().default(true), // after a failure, one attempt at a time until a success
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
    // No brace: Redis Cluster hashes only the first {...} of a key, so one in the prefix made that the tag of every
    // key (all in one slot, on one node) and the per-provider and per-client tags after it did nothing.
    redis_key_prefix: z
      .string()
      .regex(/^[^{}]*$/, "must not contain { or } (it would be every key's Redis Cluster hash tag: one slot for all)")
      .default("llm-gateway:"),
    redis_cluster: z.boolean().default(false), // `redis_url` is one node of a Redis Cluster (the others are discovered)
    redis_command_timeout_ms: positiveInt.default(200), // ms a budget/cooldown command may take before the request falls back to local state
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

/** Bounds of the store of Responses API answers (`store`, `previous_response_id`, `item_reference`); where it lives follows `state`. */
const responsesSchema = z
  .strictObject({
    store: z
      .strictObject({
        max_entries: nonNegativeInt.default(10_000), // responses kept; 0 keeps none
        max_bytes: nonNegativeInt.default(64 * 1024 * 1024), // bytes of kept JSON (each holds its conversation): 64 MiB
        max_age_ms: positiveInt.default(24 * 3_600_000), // ms a kept response stays usable: 24 h
        // ms an answer's write may take before it counts as not kept: 5 s (a Redis command times out after 1 s, and
        // a write is a few of them); a store that never answers must not hold the request's record open
        write_timeout_ms: timerMs.default(5_000),
      })
      .prefault({})
      .transform(camelKeys),
  })
  .prefault({});

/**
 * The Files and Batch APIs run by the gateway (pipeline/batch-runner.ts): bounds of what is stored and how many batch
 * lines run at once. Where files and batches live follows `state` (docs/protocols.md "Batches").
 */
const batchesSchema = z
  .strictObject({
    concurrency: positiveInt.default(2), // batch lines in flight at once, across all batches (live requests come first)
    max_file_bytes: positiveInt.default(100 * 1024 * 1024), // bytes of one uploaded file: 100 MiB (OpenAI: 200 MB)
    max_lines: positiveInt.default(50_000), // requests in one batch's input file (OpenAI's bound)
    max_files: positiveInt.default(1_000), // files kept (uploads and batch output/error files, with room for each unfinished batch's two); the oldest unused go first, then a 429
    max_batches: positiveInt.default(1_000), // batches kept; a finished one is removed, oldest first, to make room
    retention_ms: positiveInt.default(30 * 24 * 3_600_000), // ms a file or finished batch is kept: 30 days
    completion_window_ms: positiveInt.default(24 * 3_600_000), // ms a batch has to finish (`completion_window: 24h`)
    lease_ms: positiveInt.min(300).default(30_000), // ms a replica's hold on a batch it runs lasts unrenewed (state.redis_url)
  })
  .prefault({})
  .transform(camelKeys);

/** The exact-match answer cache (pipeline/answer-cache.ts); off unless asked for. */
const cacheSchema = z
  .strictObject({
    enabled: z.boolean().default(false), // give a repeated request (JSON or streamed) its earlier answer without an upstream call
    ttl_ms: positiveInt.default(300_000), // ms an answer is given again after it was stored: 5 min
    max_entries: nonNegativeInt.default(1_000), // answers kept; 0 keeps none
    max_bytes: positiveInt.default(16 * 1024 * 1024), // bytes of kept answers (16 MiB); one above a tenth of it is not kept
  })
  .prefault({})
  .transform(camelKeys);

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
    sample_ratio: z.number().min(0).max(1).default(1), // share of new traces exported; $OTEL_TRACES_SAMPLER(_ARG) win
    max_queue_spans: positiveInt.max(1_000_000).default(2048), // spans waiting for export; past it the oldest are dropped
    export_timeout_ms: timerMs.default(10_000), // ms one export (retries included) may take; also the shutdown bound
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
    batches: batchesSchema,
    cache: cacheSchema,
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
