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

export const providerSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "letters, digits, '.', '_' and '-' only (it appears in model names)")
    .optional(),
  preset: z.string().min(1).optional(),
  enabled: z.boolean().optional(),
  base_url: z.url({ protocol: /^https?$/ }).optional(),
  api_key_env_var: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  api_key: z.string().optional(),
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

export type RawConfig = z.infer<typeof configSchema>;
export type RawProvider = z.infer<typeof providerSchema>;
export type RawModel = z.infer<typeof modelSchema>;
export type Limits = z.infer<typeof limitsSchema>;
export type MetaModelFilter = z.infer<typeof metaModelFilterSchema>;
