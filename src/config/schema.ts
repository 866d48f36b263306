// The config file's shape. Keys keep the original Python project's vocabulary (`providers`, `base_url`,
// `api_key_env_var`, `model_url`, `base_priority`) so its users' files load unchanged. Objects are strict:
// an unknown key is almost always a typo, and silently ignoring it would route traffic the user did not intend.
import { z } from "zod";

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

/** Budgets; any subset. Windows: s = second, m = minute, h = hour, d = day. */
export const limitsSchema = z.strictObject({
  rps: positiveInt.optional(),
  rpm: positiveInt.optional(),
  rph: positiveInt.optional(),
  rpd: positiveInt.optional(),
  tpm: positiveInt.optional(),
  tph: positiveInt.optional(),
  tpd: positiveInt.optional(),
  tokens_per_month: positiveInt.optional(),
  concurrency: positiveInt.optional(),
});

export const modelSchema = z.strictObject({
  /** Upstream model id; default: the public name. */
  id: z.string().min(1).optional(),
  /** Added to the score; higher is preferred. Default 0. */
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
  kind: z.enum(["chat", "embedding", "audio", "image", "rerank", "moderation"]).optional(),
  limits: limitsSchema.optional(),
});

const headerValue = z.union([z.string(), z.number()]).transform(String);

/** A JavaScript regular expression, searched case-insensitively in upstream model ids. */
const idPattern = z.string().min(1).refine(isValidPattern, "not a valid regular expression (JavaScript syntax)");
const idPatterns = z.union([idPattern, z.array(idPattern).min(1)]);

/**
 * What is known about one upstream model (usually from a provider preset), keyed by its upstream id. Applied to
 * discovered and configured models alike; a field set under `models:` wins over it.
 */
export const knownModelSchema = z.strictObject({
  /** Context window, tokens. */
  context: positiveInt.optional(),
  /** Parameter count, billions. */
  params_b: z.number().positive().optional(),
  tools: z.boolean().optional(),
  vision: z.boolean().optional(),
  json_schema: z.boolean().optional(),
  prefill: z.boolean().optional(),
  kind: modelSchema.shape.kind,
  /** The model's own free-tier budgets (the provider's `limits` are the account-wide pool). */
  limits: limitsSchema.optional(),
});

export const providerSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "letters, digits, '.', '_' and '-' only (it appears in model names)")
    .optional(),
  preset: z.string().min(1).optional(),
  enabled: z.boolean().optional(),
  base_url: z.url({ protocol: /^https?$/ }).optional(),
  api_key_env_var: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  /** Other names for the first `api_key_env_var` (GOOGLE_API_KEY for GEMINI_API_KEY): the first one set stands in. */
  api_key_env_var_aliases: z.array(z.string().min(1)).min(1).optional(),
  api_key: z.string().optional(),
  /** Variables besides the key that must be set (an account id in the URL); unset, the provider is skipped. */
  required_env_vars: z.array(z.string().min(1)).min(1).optional(),
  /** Base for `GET {model_url}/models`; taken as the list URL itself when its path ends in /models or it has a query. */
  model_url: z.url({ protocol: /^https?$/ }).optional(),
  base_priority: z.number().nonnegative().optional(),
  timeout_ms: positiveInt.optional(),
  first_token_timeout_ms: positiveInt.optional(),
  stream_idle_timeout_ms: positiveInt.optional(),
  retries: nonNegativeInt.max(5).optional(),
  headers: z.record(z.string(), headerValue).optional(),
  models: z.record(z.string().min(1), modelSchema.nullable()).optional(),
  rate_limit_dialect: z.string().min(1).optional(),
  limits: limitsSchema.optional(),
  day_reset: z.string().optional(),
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

const metaModelFilterSchema = z.strictObject({
  leaderboard: z.string().optional(),
  min_context: positiveInt.optional(),
  min_params_b: z.number().positive().optional(),
  providers: z.array(z.string()).optional(),
  tools: z.boolean().optional(),
  vision: z.boolean().optional(),
  include: z.array(z.string()).optional(),
});

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      port: z.number().int().min(0).max(65535).optional(),
      host: z.string().min(1).optional(),
      api_keys: z.array(z.string()).optional(),
      admin_keys: z.array(z.string()).optional(),
      body_limit_bytes: positiveInt.optional(),
      shutdown_timeout_ms: positiveInt.optional(),
      log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).optional(),
      cors_origins: z.array(z.string().min(1)).optional(),
    })
    .optional(),
  responses: z
    .strictObject({
      store: z
        .strictObject({
          max_entries: nonNegativeInt.optional(),
          max_bytes: nonNegativeInt.optional(),
          max_age_ms: positiveInt.optional(),
        })
        .optional(),
    })
    .optional(),
  providers: z.array(providerSchema).default([]),
  meta_models: z
    .record(z.string().min(1), z.union([z.array(z.string().min(1)).min(1), metaModelFilterSchema]))
    .optional(),
  routing: z
    .strictObject({
      max_attempts: positiveInt.max(50).optional(),
      total_timeout_ms: positiveInt.optional(),
      max_stream_duration_ms: positiveInt.optional(),
      max_wait_for_better_ms: nonNegativeInt.optional(),
      wait_score_ratio: z.number().min(0).max(1).optional(),
      strategy: z.enum(["best", "spread"]).optional(),
      queue_timeout_ms: nonNegativeInt.optional(),
      max_queued: nonNegativeInt.optional(),
      sticky_ttl_ms: nonNegativeInt.optional(),
    })
    .optional(),
  cooldowns: z
    .strictObject({
      rate_limit_base_ms: positiveInt.optional(),
      rate_limit_max_ms: positiveInt.optional(),
      invalid_key_ms: positiveInt.optional(),
      failure_threshold: positiveInt.optional(),
      failure_window_ms: positiveInt.optional(),
      circuit_open_ms: positiveInt.optional(),
    })
    .optional(),
  discovery: z
    .strictObject({
      cache_dir: z.string().min(1).optional(),
      max_age_ms: positiveInt.optional(),
      timeout_ms: positiveInt.optional(),
    })
    .optional(),
  scoring: z.record(z.string(), z.unknown()).optional(),
  state: z
    .strictObject({
      path: z.string().min(1).optional(),
      redis_url: z
        .string()
        .regex(/^rediss?:\/\//, "must start with redis:// or rediss://")
        .optional(),
      redis_key_prefix: z.string().optional(),
      flush_interval_ms: positiveInt.optional(),
    })
    .optional(),
});

function isValidPattern(pattern: string): boolean {
  try {
    new RegExp(pattern, "i");
    return true;
  } catch {
    return false;
  }
}

export type RawConfig = z.infer<typeof configSchema>;
export type RawProvider = z.infer<typeof providerSchema>;
export type RawModel = z.infer<typeof modelSchema>;
export type Limits = z.infer<typeof limitsSchema>;
export type MetaModelFilter = z.infer<typeof metaModelFilterSchema>;
export type RawKnownModel = z.infer<typeof knownModelSchema>;
