// A `providers:` entry: as written (`providerSchema`, nothing filled in, so that a preset's value is not masked by a
// default) and as resolved after the preset merge and the one-provider-per-key expansion (`providerSettingsSchema`:
// defaults, camelCase). See schema.ts for the whole config.
import { z } from "zod";
import { parseDayReset, UTC_MIDNIGHT } from "./day-reset.ts";
import { nonJsonParts } from "./json-value.ts";
import { MESSAGE_ORDERS } from "./message-orders.ts";
import { modelKindSchema, moderationApiOfKind, moderationApiSchema } from "./model-kind-schema.ts";
import {
  asList,
  camelKeys,
  defaultModelUrl,
  headerSafe,
  httpUrl,
  isValidPattern,
  nonNegativeInt,
  positiveInt,
  stripTrailingSlash,
  timerMs,
} from "./schema-helpers.ts";
import { ZOD_CUSTOM_ISSUE } from "./scoring-schema.ts";
import { UPSTREAM_PATHS } from "./upstream-paths.ts";

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
  /** Seconds of audio uploaded per hour and per day (Groq's ASH, ASD): docs/limits.md "Audio seconds". */
  ash: positiveInt.optional(),
  asd: positiveInt.optional(),
  concurrency: positiveInt.optional(),
  /** How the provider counts its second/minute/hour windows (docs/limits.md, "Window algorithms"); default sliding. */
  window: z.enum(["sliding", "fixed", "bucket"]).optional(),
  /** `fixed`: ms after the clock's second/minute/hour boundary at which the provider's windows start; default 0. */
  window_offset_ms: z.number().int().nonnegative().optional(),
  /** Where the window algorithm comes from (a documentation URL, "headers"): shown, never interpreted. */
  window_source: z.string().optional(),
});

/**
 * The rate-limit header dialects src/limits/header-dialects.ts reads (docs/limits.md "Learned limits"). A closed
 * list, because a misspelled dialect would read no header at all, silently: no limit learned, no park at "0 left".
 */
export const RATE_LIMIT_DIALECT_NAMES = [
  "openai",
  "groq",
  "cerebras",
  "openrouter",
  "mistral",
  "together",
  "generic",
] as const;
export type RateLimitDialectName = (typeof RATE_LIMIT_DIALECT_NAMES)[number];

/** Whether requests to a provider/model cost money (docs/routing.md "Free and paid models"). */
const costSchema = z.enum(["free", "paid"]);

/**
 * Fields no body rule may touch: the gateway sets `model` per candidate; the conversation, an upload's audio
 * (`file`) and `stream` are the client's request itself (dropping or replacing them would send another request);
 * `stream_options` carries the gateway's usage report (`inject_stream_usage: false` turns it off); `models` and the
 * reasoning extension never go upstream.
 */
export const RESERVED_BODY_FIELDS: ReadonlySet<string> = new Set([
  "model",
  "models",
  "messages",
  "prompt",
  "input",
  "file",
  "stream",
  "stream_options",
  "x_gateway_reasoning_effort",
]);

/**
 * A body rule's `defaults` or `override`: its values are sent as JSON, so a YAML-only value is refused (it would
 * reach the provider changed: `.inf` as null, a `!!set` as `{}`), and a `__proto__` key, which zod and every copy
 * drop without a word. Checked before the record is built, which no longer has it.
 */
const bodyFields = z
  .unknown()
  .superRefine((raw, context) => {
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return;
    for (const part of nonJsonParts(raw)) {
      context.addIssue({ code: ZOD_CUSTOM_ISSUE, path: part.path, message: `is ${part.what}` });
    }
  })
  .pipe(z.record(z.string().min(1), z.unknown()));

/**
 * What is changed in the body sent to this provider or model (providers/body-rules.ts; docs/configuration.md
 * "Request body rules"): top-level fields filled in when absent, always set, or removed.
 */
const bodyRulesSchema = z
  .strictObject({
    defaults: bodyFields.optional(),
    override: bodyFields.optional(),
    drop: z.array(z.string().min(1)).optional(),
  })
  .superRefine((rules, context) => {
    const refuse = (path: (string | number)[], message: string) =>
      context.addIssue({ code: ZOD_CUSTOM_ISSUE, path, message });
    const isReserved = (field: string, path: (string | number)[]) => {
      if (!RESERVED_BODY_FIELDS.has(field)) return false;
      const hint = field === "stream_options" ? "; `inject_stream_usage: false` stops the usage request" : "";
      refuse(
        path,
        `\`${field}\` cannot be changed by a body rule (the gateway or the client's request sets it${hint})`,
      );
      return true;
    };
    for (const part of ["defaults", "override"] as const) {
      for (const field of Object.keys(rules[part] ?? {})) isReserved(field, [part, field]);
    }
    for (const [index, field] of (rules.drop ?? []).entries()) {
      if (isReserved(field, ["drop", index])) continue;
      if (rules.override !== undefined && field in rules.override) {
        refuse(
          ["drop", index],
          `\`${field}\` is both dropped and overridden: keep it in \`override\` alone (override replaces the client's value)`,
        );
      }
    }
  });

/**
 * What a model is and may be sent, set on a configured model (`models:`) or known of an upstream model
 * (`known_models:`, usually from a preset; a field set under `models:` wins over it).
 */
const modelFacts = {
  /**
   * Context window, tokens. Alone: one window the prompt and the requested `max_tokens` share. With a different
   * `max_output_tokens`: the prompt's own limit (docs/routing.md "Context fit").
   */
  context: positiveInt.optional(),
  /** The model's own output limit, tokens (Gemini, Claude): then `context` limits the prompt alone. */
  max_output_tokens: positiveInt.optional(),
  max_inputs: positiveInt.optional(), // an embedding model's most inputs a request (Google: 100); embeddings-chunks.ts
  /** Parameter count, billions. */
  params_b: z.number().positive().optional(),
  tools: z.boolean().optional(),
  vision: z.boolean().optional(),
  json_schema: z.boolean().optional(),
  /** Whether the model takes `reasoning_effort` (docs/protocols.md "Reasoning"); default: the metadata table. */
  reasoning: z.boolean().optional(),
  /** Whether the model accepts an assistant prefill (stream continuation). */
  prefill: z.boolean().optional(),
  /**
   * The role order the model accepts: `strict` (Mistral), `alternate` (user/assistant chat templates) or `any`;
   * default: the provider's, else `strict` for a Mistral-family id (docs/configuration.md "Message order").
   */
  message_order: z.enum(MESSAGE_ORDERS).optional(),
  /** Which endpoint family the model serves; default guessed from its id. */
  kind: modelKindSchema.optional(),
  /**
   * A moderation model's way (`native` or `llama_guard`: a provider's alias of Llama Guard whose id does not say
   * so); implies `kind: moderation`. Default: read from its id.
   */
  moderation_api: moderationApiSchema.optional(),
  /** The model's own budgets (on a known model: its free tier; the provider's `limits` are the account-wide pool). */
  limits: limitsSchema.optional(),
  /** `free` or `paid`; default: the provider's `free_models` / `cost`. */
  cost: costSchema.optional(),
  /** Changes to the body this model is sent: after the provider's; a known model's before a configured model's. */
  body: bodyRulesSchema.optional(),
};

const modelSchema = z
  .strictObject({
    /** Upstream model id; default: the public name. */
    id: z.string().min(1).optional(),
    /** Added to the score; higher is preferred. Default 0 (see modelSettingsSchema). */
    priority: z.number().optional(),
    /** Leaderboard row name to use instead of the automatic match. */
    leaderboard_name: z.string().min(1).optional(),
    ...modelFacts,
  })
  .superRefine(moderationApiOfKind);

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
const knownModelSchema = z.strictObject(modelFacts).superRefine(moderationApiOfKind);

/** `"00:00"`, `"07:30 UTC"`, `"00:00 America/Los_Angeles"`: when daily and monthly windows reset. */
const dayResetText = z.string().superRefine((text, context) => {
  try {
    parseDayReset(text);
  } catch (error) {
    context.addIssue((error as Error).message);
  }
});

/**
 * The name of an environment variable, never its value: `api_key_env_var: ${GROQ_KEY}` substitutes the key itself,
 * which "environment variable <value> is not set" would then print (in `check`, the log and /health). The message
 * does not quote the value.
 */
const envVarName = z
  .string()
  .min(1)
  .regex(
    /^[A-Za-z_][A-Za-z0-9_]*$/,
    `must be the name of an environment variable (letters, digits and '_'), not its value: write \`api_key_env_var: GROQ_API_KEY\`, or \`api_key: \${GROQ_API_KEY}\``,
  );

export const providerSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "letters, digits, '.', '_' and '-' only (it appears in model names)")
    .optional(),
  preset: z.string().min(1).optional(),
  enabled: z.boolean().optional(),
  base_url: httpUrl.optional(),
  api_key_env_var: z.union([envVarName, z.array(envVarName).min(1)]).optional(),
  /** Other names for the first `api_key_env_var` (GOOGLE_API_KEY for GEMINI_API_KEY): the first one set stands in. */
  api_key_env_var_aliases: z.array(envVarName).min(1).optional(),
  api_key: headerSafe.optional(),
  /** Variables besides the key that must be set (an account id in the URL); unset, the provider is skipped. */
  required_env_vars: z.array(envVarName).min(1).optional(),
  /** Base for `GET {model_url}/models`; taken as the list URL itself when its path ends in /models or it has a query. */
  model_url: httpUrl.optional(),
  base_priority: z.number().nonnegative().optional(),
  timeout_ms: timerMs.optional(),
  first_token_timeout_ms: timerMs.optional(),
  stream_idle_timeout_ms: timerMs.optional(),
  retries: nonNegativeInt.max(5).optional(),
  /** Requests in flight to this provider at once; more wait for a slot (docs/streaming.md, "Upstream limits"). */
  max_in_flight: positiveInt.optional(),
  headers: headersSchema.optional(),
  models: z.record(z.string().min(1), modelSchema.nullable()).optional(),
  rate_limit_dialect: z.enum(RATE_LIMIT_DIALECT_NAMES).optional(),
  limits: limitsSchema.optional(),
  /** `free` or `paid` for every model of the provider (unset: paid, unless a preset says free). */
  cost: costSchema.optional(),
  /** Upstream ids matching one of these are free whatever `cost` says (OpenRouter's `:free$`). */
  free_models: idPatterns.optional(),
  /** `account`: any 429 cools every model of this key at once (one shared pool); `model`: only the model. */
  rate_limit_scope: z.enum(["model", "account"]).optional(),
  /**
   * The endpoints (paths below base_url) the provider's API has: a request to any other is never sent to it (an
   * aggregator listing image models it has no `/images/generations` for). Unset: every path.
   */
  served_paths: z.array(z.enum(UPSTREAM_PATHS)).min(1).optional(),
  day_reset: dayResetText.optional(),
  inject_stream_usage: z.boolean().optional(),
  /** `native`: Responses API requests are sent to `<base_url>/responses` as they are (docs/protocols.md "Native"). */
  responses_api: z.enum(["translate", "native"]).optional(),
  /**
   * How `/v1/rerank` reaches it: `cohere` (the shape Cohere, Jina, Together, vLLM, Infinity share, at
   * `<base_url>/rerank`), `voyage` (`top_k`, answers `data`) or `nvidia` (a NIM's `<base_url>/ranking`);
   * upstream/rerank-dialect.ts.
   */
  rerank_api: z.enum(["cohere", "voyage", "nvidia"]).optional(),
  count_max_tokens: z.boolean().optional(),
  /** The seconds of audio a transcription or translation is counted as at least (Groq bills 10 s per request). */
  min_billed_audio_seconds: z.number().nonnegative().optional(),
  /** The role order every model of the provider accepts, unless a model says otherwise (`any`, `strict`, `alternate`). */
  message_order: z.enum(MESSAGE_ORDERS).optional(),
  /**
   * The provider's API takes Mistral's `prefix: true` on a trailing assistant message (a prefill): the `strict` order
   * marks one so (docs/configuration.md "Message order"). The mistral and codestral presets set it.
   */
  assistant_prefix: z.boolean().optional(),
  /** Changes to the body every model of this provider is sent (docs/configuration.md "Request body rules"). */
  body: bodyRulesSchema.optional(),
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
export const limitsSettingsSchema = limitsSchema.transform(camelKeys);

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
    /**
     * The preset the provider was built on and how: the entry named it (`preset:`), or its base_url is the
     * preset's (docs/providers.md "Recognised by the base URL"). Unset: no preset. Shown by `check` and `providers`.
     */
    preset_origin: z.object({ preset: z.string(), by: z.enum(["name", "base_url"]) }).optional(),
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
    cost: raw.cost.default("paid"), // a provider nobody said is free is treated as paid (routing.paid)
    free_models: raw.free_models.transform(asList), // upstream id patterns that are free; empty = none
    rate_limit_scope: raw.rate_limit_scope.default("model"), // what one 429 cools: the model, or the key's whole pool
    served_paths: raw.served_paths, // unset: every endpoint path may be sent to it
    day_reset: dayResetText.optional().transform((text) => (text === undefined ? UTC_MIDNIGHT : parseDayReset(text))), // default 00:00 UTC
    inject_stream_usage: raw.inject_stream_usage.default(true), // ask for a usage chunk on streams
    responses_api: raw.responses_api.default("translate"), // how /v1/responses reaches it: as chat, or natively
    rerank_api: raw.rerank_api.default("cohere"), // how /v1/rerank reaches it: the shape most rerank servers share
    count_max_tokens: raw.count_max_tokens.default(true), // charge max_tokens against token budgets up front
    min_billed_audio_seconds: raw.min_billed_audio_seconds.default(0), // seconds; 0: an upload counts its own duration
    message_order: raw.message_order, // unset: by model id (Mistral family `strict`, others `any`)
    assistant_prefix: raw.assistant_prefix.default(false), // a host that refuses unknown message fields answers 400 to `prefix`
    body: raw.body, // unset: the client's body as it is
    /**
     * What the environment put into the body rules' values (`${TENANT_TOKEN}`): sent upstream in every body, so
     * redacted like the key (config/provider-secrets.ts). Not a config key: resolve-providers.ts sets it.
     */
    body_secrets: z.array(z.string()).default([]), // none: no rule value came from a variable
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
    modelUrl: model_url === undefined ? defaultModelUrl(base_url) : stripTrailingSlash(model_url),
    /** A one-element list, so that code redacting secrets can treat it like any list of secrets. */
    apiKeys: [api_key] as [string],
  }));

/** One `providers:` entry, validated as written (no defaults). */
export type RawProvider = z.output<typeof providerSchema>;
export type RawKnownModel = z.output<typeof knownModelSchema>;
