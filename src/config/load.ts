// Config loading: YAML (with a LineCounter, so every problem names file:line) -> ${ENV} interpolation ->
// zod validation -> cross-field checks -> defaults -> deep freeze.
import { readFileSync } from "node:fs";
import { type Document, isMap, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import type { z } from "zod";
import { ConfigError, type ConfigIssue } from "./config-error.ts";
import { type DayReset, parseDayReset, UTC_MIDNIGHT } from "./day-reset.ts";
import {
  COOLDOWN_DEFAULTS,
  DISCOVERY_DEFAULTS,
  PROVIDER_DEFAULTS,
  RESPONSES_STORE_DEFAULTS,
  ROUTING_DEFAULTS,
  SERVER_DEFAULTS,
  STATE_DEFAULTS,
} from "./defaults.ts";
import { type Env, interpolate } from "./env.ts";
import { configSchema, type RawConfig, type RawModel, type RawProvider } from "./schema.ts";
import type { GatewayConfig, KnownModel, MetaModel, ModelSettings, ProviderSettings } from "./types.ts";

export interface LoadedConfig {
  readonly config: GatewayConfig;
  /** Non-fatal problems, e.g. a provider skipped because its key variable is unset. */
  readonly warnings: readonly string[];
}

/**
 * Hook for provider presets: fills in a provider entry's missing fields. It throws (with a readable message) for
 * an unknown preset; the message is reported at the entry's `preset` key.
 */
export type PresetResolver = (raw: RawProvider) => RawProvider;

/**
 * Separator between a provider's name and its key number when one entry has several keys: `groq`, `groq.2`,
 * `groq.3` (valid in provider names, and rare in hand-written ones). The number is the key variable's position
 * in `api_key_env_var`, so a name always means the same key even when another one is unset.
 */
export const KEY_NUMBER_SEPARATOR = ".";

export function keyProviderName(name: string, keyPosition: number): string {
  return keyPosition === 0 ? name : `${name}${KEY_NUMBER_SEPARATOR}${keyPosition + 1}`;
}

export interface LoadOptions {
  /** Per provider entry, the variables its `api_key: ${...}` referenced (to name them when unset). */
  apiKeyReferences?: readonly (readonly string[])[];
  env: Env;
  resolvePreset?: PresetResolver;
}

export function loadConfigFile(path: string, options: LoadOptions): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "file not found" : `cannot read it (${code ?? String(error)})`;
    throw new ConfigError([{ location: path, path: "", message: why }]);
  }
  return parseConfigText(text, path, options);
}

export function parseConfigText(text: string, fileName: string, options: LoadOptions): LoadedConfig {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined): string => {
    if (offset === undefined) return fileName;
    return `${fileName}:${lineCounter.linePos(offset).line}`;
  };
  if (document.errors.length > 0) {
    throw new ConfigError(
      document.errors.map((error) => ({
        location: at(error.pos[0]),
        path: "",
        message: error.message.split("\n")[0] ?? "",
      })),
    );
  }
  const missingVariables = new Set<string>();
  const rawData: unknown = document.toJS() ?? {};
  const data = interpolateDeep(rawData, options.env, missingVariables);
  // Remember which variables each provider's `api_key: ${VAR}` referenced, to name them when they are unset.
  const rawProviders = (rawData as { providers?: unknown }).providers;
  const apiKeyReferences = Array.isArray(rawProviders)
    ? rawProviders.map((entry) => {
        const apiKey = (entry as { api_key?: unknown } | null)?.api_key;
        return typeof apiKey === "string"
          ? [...apiKey.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((match) => match[1] as string)
          : [];
      })
    : [];
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => zodIssueToConfigIssue(issue, document, at)));
  }
  return buildConfig(parsed.data, fileName, { ...options, apiKeyReferences }, (path) =>
    at(nodeAt(document, path)?.range?.[0]),
  );
}

/** Builds the resolved config from an already-validated object (used for files and for built-in configs). */
export function buildConfig(
  raw: RawConfig,
  sourcePath: string | undefined,
  options: LoadOptions,
  locate: (path: readonly (string | number)[]) => string = () => sourcePath ?? "<config>",
): LoadedConfig {
  const { env } = options;
  const issues: ConfigIssue[] = [];
  const warnings: string[] = [];
  const providers: ProviderSettings[] = [];
  const skippedProviders: { name: string; reason: string }[] = [];
  const names = new Map<string, number>();

  raw.providers.forEach((entry, index) => {
    let rawProvider = entry;
    if (options.resolvePreset !== undefined) {
      try {
        rawProvider = options.resolvePreset(entry);
      } catch (error) {
        issues.push({
          location: locate(["providers", index, "preset"]),
          path: `providers.${index}.preset`,
          message: error instanceof Error ? error.message : String(error),
        });
        return;
      }
    } else if (entry.preset !== undefined) {
      issues.push({
        location: locate(["providers", index, "preset"]),
        path: `providers.${index}.preset`,
        message: "presets are not available here (no preset resolver was given)",
      });
      return;
    }
    const where = locate(["providers", index]);
    if (rawProvider.base_url === undefined) {
      issues.push({ location: where, path: `providers.${index}.base_url`, message: "required (or use a preset)" });
      return;
    }
    const name = rawProvider.name ?? deriveProviderName(rawProvider.base_url);
    const previous = names.get(name);
    if (previous !== undefined) {
      issues.push({
        location: locate(["providers", index, "name"]),
        path: `providers.${index}.name`,
        message: `duplicate provider name "${name}" (also providers.${previous}); set a distinct \`name\``,
      });
      return;
    }
    names.set(name, index);
    let dayReset: DayReset = UTC_MIDNIGHT;
    if (rawProvider.day_reset !== undefined) {
      try {
        dayReset = parseDayReset(rawProvider.day_reset);
      } catch (error) {
        issues.push({
          location: locate(["providers", index, "day_reset"]),
          path: `providers.${index}.day_reset`,
          message: (error as Error).message,
        });
        return;
      }
    }
    if (rawProvider.enabled === false) {
      skippedProviders.push({ name, reason: "disabled in config" });
      return;
    }
    const missingRequired = (rawProvider.required_env_vars ?? []).filter(
      (variable) => nonEmpty(env[variable]) === undefined,
    );
    const { keys, missing } = resolveKeys(rawProvider, env, options.apiKeyReferences?.[index] ?? []);
    // A missing key is the more common and more useful news; the other variables are named once it is set.
    if (keys.length > 0 && missingRequired.length > 0) {
      const reason = `environment variable ${missingRequired.join(", ")} is not set`;
      skippedProviders.push({ name, reason });
      warnings.push(`provider "${name}" skipped: ${reason}`);
      return;
    }
    if (keys.length === 0) {
      const reason =
        missing.length > 0
          ? `no API key: environment variable ${missing.join(", ")} is not set`
          : "no API key: set api_key_env_var or api_key";
      skippedProviders.push({ name, reason });
      warnings.push(`provider "${name}" skipped: ${reason}`);
      return;
    }
    if (missing.length > 0) {
      warnings.push(`provider "${name}": environment variable ${missing.join(", ")} is not set; using its other keys`);
    }
    // One provider per key: each gets its own budgets, cooldowns and invalid-key state, and routing fails over
    // between them like between any two providers serving the same models.
    for (const { key, position } of keys) {
      const keyName = keyProviderName(name, position);
      if (keyName !== name) {
        const taken = names.get(keyName);
        if (taken !== undefined) {
          issues.push({
            location: locate(["providers", index, "api_key_env_var"]),
            path: `providers.${index}.api_key_env_var`,
            message: `key ${position + 1} would be provider "${keyName}", a name providers.${taken} already has`,
          });
          continue;
        }
        names.set(keyName, index);
      }
      providers.push(resolveProvider(keyName, rawProvider, key, dayReset));
    }
  });

  const metaModels: Record<string, MetaModel> = {};
  for (const [name, value] of Object.entries(raw.meta_models ?? {})) {
    if (name.includes(",") || name.includes("/")) {
      issues.push({
        location: locate(["meta_models", name]),
        path: `meta_models.${name}`,
        message: "a meta model name cannot contain ',' or '/'",
      });
    }
    metaModels[name] = Array.isArray(value) ? { kind: "list", names: value } : { kind: "filter", filter: value };
  }
  if (issues.length > 0) throw new ConfigError(issues);

  const server = raw.server ?? {};
  const allowedTokens = (env.ALLOWED_BEARER_TOKENS ?? "")
    .split(",")
    .map((token) => token.trim())
    .filter((token) => token !== "");
  const envPort = env.PORT === undefined || env.PORT === "" ? undefined : Number(env.PORT);
  if (envPort !== undefined && !(Number.isInteger(envPort) && envPort >= 0 && envPort <= 65535)) {
    throw new ConfigError([{ location: "environment", path: "PORT", message: `not a port number: "${env.PORT}"` }]);
  }
  const routing = raw.routing ?? {};
  const cooldowns = raw.cooldowns ?? {};
  const discovery = raw.discovery ?? {};
  const config: GatewayConfig = {
    sourcePath,
    server: {
      port: envPort ?? server.port ?? SERVER_DEFAULTS.port,
      host: nonEmpty(env.HOST) ?? server.host ?? SERVER_DEFAULTS.host,
      apiKeys: [...(server.api_keys ?? []).filter((key) => key !== ""), ...allowedTokens],
      adminKeys: (server.admin_keys ?? []).filter((key) => key !== ""),
      bodyLimitBytes: server.body_limit_bytes ?? SERVER_DEFAULTS.bodyLimitBytes,
      shutdownTimeoutMs: server.shutdown_timeout_ms ?? SERVER_DEFAULTS.shutdownTimeoutMs,
      logLevel: server.log_level ?? SERVER_DEFAULTS.logLevel,
      corsOrigins: server.cors_origins ?? SERVER_DEFAULTS.corsOrigins,
    },
    providers,
    skippedProviders,
    metaModels,
    routing: {
      maxAttempts: routing.max_attempts ?? ROUTING_DEFAULTS.maxAttempts,
      totalTimeoutMs: routing.total_timeout_ms ?? ROUTING_DEFAULTS.totalTimeoutMs,
      maxStreamDurationMs: routing.max_stream_duration_ms ?? ROUTING_DEFAULTS.maxStreamDurationMs,
      maxWaitForBetterMs: routing.max_wait_for_better_ms ?? ROUTING_DEFAULTS.maxWaitForBetterMs,
      waitScoreRatio: routing.wait_score_ratio ?? ROUTING_DEFAULTS.waitScoreRatio,
      strategy: routing.strategy ?? ROUTING_DEFAULTS.strategy,
      queueTimeoutMs: routing.queue_timeout_ms ?? ROUTING_DEFAULTS.queueTimeoutMs,
      maxQueued: routing.max_queued ?? ROUTING_DEFAULTS.maxQueued,
      stickyTtlMs: routing.sticky_ttl_ms ?? ROUTING_DEFAULTS.stickyTtlMs,
    },
    cooldowns: {
      rateLimitBaseMs: cooldowns.rate_limit_base_ms ?? COOLDOWN_DEFAULTS.rateLimitBaseMs,
      rateLimitMaxMs: cooldowns.rate_limit_max_ms ?? COOLDOWN_DEFAULTS.rateLimitMaxMs,
      invalidKeyMs: cooldowns.invalid_key_ms ?? COOLDOWN_DEFAULTS.invalidKeyMs,
      failureThreshold: cooldowns.failure_threshold ?? COOLDOWN_DEFAULTS.failureThreshold,
      failureWindowMs: cooldowns.failure_window_ms ?? COOLDOWN_DEFAULTS.failureWindowMs,
      circuitOpenMs: cooldowns.circuit_open_ms ?? COOLDOWN_DEFAULTS.circuitOpenMs,
    },
    discovery: {
      cacheDir: discovery.cache_dir ?? DISCOVERY_DEFAULTS.cacheDir,
      maxAgeMs: discovery.max_age_ms ?? DISCOVERY_DEFAULTS.maxAgeMs,
      timeoutMs: discovery.timeout_ms ?? DISCOVERY_DEFAULTS.timeoutMs,
    },
    scoring: raw.scoring ?? {},
    state: {
      path: raw.state?.path ?? STATE_DEFAULTS.path,
      redisUrl: raw.state?.redis_url,
      redisKeyPrefix: raw.state?.redis_key_prefix ?? STATE_DEFAULTS.redisKeyPrefix,
      flushIntervalMs: raw.state?.flush_interval_ms ?? STATE_DEFAULTS.flushIntervalMs,
    },
    responsesStore: {
      maxEntries: raw.responses?.store?.max_entries ?? RESPONSES_STORE_DEFAULTS.maxEntries,
      maxBytes: raw.responses?.store?.max_bytes ?? RESPONSES_STORE_DEFAULTS.maxBytes,
      maxAgeMs: raw.responses?.store?.max_age_ms ?? RESPONSES_STORE_DEFAULTS.maxAgeMs,
    },
  };
  return { config: deepFreeze(config), warnings };
}

/** The keys that are set, with their position in `api_key_env_var` (which names the provider they become). */
function resolveKeys(
  provider: RawProvider,
  env: Env,
  referenced: readonly string[],
): { keys: { key: string; position: number }[]; missing: string[] } {
  if (provider.api_key !== undefined && provider.api_key !== "") {
    return { keys: [{ key: provider.api_key, position: 0 }], missing: [] };
  }
  const variables =
    provider.api_key_env_var === undefined
      ? []
      : Array.isArray(provider.api_key_env_var)
        ? provider.api_key_env_var
        : [provider.api_key_env_var];
  const keys: { key: string; position: number }[] = [];
  const missing: string[] = [];
  variables.forEach((variable, position) => {
    // Aliases are other names of the first variable (GOOGLE_API_KEY for GEMINI_API_KEY), not more keys.
    const candidates = position === 0 ? [variable, ...(provider.api_key_env_var_aliases ?? [])] : [variable];
    const key = candidates.map((name) => nonEmpty(env[name])).find((value) => value !== undefined);
    if (key === undefined) missing.push(candidates.join(" or "));
    else keys.push({ key, position });
  });
  // `api_key: ${VAR}` with VAR unset interpolates to "": report the variable by its reference.
  if (variables.length === 0 && provider.api_key === "") {
    missing.push(...(referenced.length > 0 ? referenced : ["(referenced by api_key)"]));
  }
  return { keys, missing };
}

function resolveProvider(name: string, raw: RawProvider, apiKey: string, dayReset: DayReset): ProviderSettings {
  const baseUrl = stripTrailingSlash(raw.base_url ?? "");
  return {
    name,
    baseUrl,
    modelUrl: raw.model_url === undefined ? baseUrl : stripTrailingSlash(raw.model_url),
    apiKeys: [apiKey],
    basePriority: raw.base_priority ?? PROVIDER_DEFAULTS.basePriority,
    timeoutMs: raw.timeout_ms ?? PROVIDER_DEFAULTS.timeoutMs,
    firstTokenTimeoutMs: raw.first_token_timeout_ms ?? PROVIDER_DEFAULTS.firstTokenTimeoutMs,
    streamIdleTimeoutMs: raw.stream_idle_timeout_ms ?? PROVIDER_DEFAULTS.streamIdleTimeoutMs,
    retries: raw.retries ?? PROVIDER_DEFAULTS.retries,
    headers: raw.headers ?? {},
    models:
      raw.models === undefined
        ? undefined
        : Object.entries(raw.models).map(([publicName, model]) => resolveModel(publicName, model ?? {})),
    rateLimitDialect: raw.rate_limit_dialect ?? PROVIDER_DEFAULTS.rateLimitDialect,
    limits: raw.limits,
    dayReset,
    injectStreamUsage: raw.inject_stream_usage ?? PROVIDER_DEFAULTS.injectStreamUsage,
    countMaxTokens: raw.count_max_tokens ?? PROVIDER_DEFAULTS.countMaxTokens,
    knownModels: resolveKnownModels(raw.known_models),
    discoveryInclude: asList(raw.discovery_include),
    discoveryExclude: asList(raw.discovery_exclude),
    discoveryIdField: raw.discovery_id_field,
    discoveryIdStripPrefix: raw.discovery_id_strip_prefix,
  };
}

function resolveKnownModels(known: RawProvider["known_models"]): Record<string, KnownModel> {
  const result: Record<string, KnownModel> = {};
  for (const [id, model] of Object.entries(known ?? {})) {
    result[id.toLowerCase()] = {
      contextTokens: model.context,
      paramsB: model.params_b,
      tools: model.tools,
      vision: model.vision,
      jsonSchema: model.json_schema,
      prefill: model.prefill,
      kind: model.kind,
      limits: model.limits,
    };
  }
  return result;
}

function asList(value: string | readonly string[] | undefined): string[] {
  return value === undefined ? [] : typeof value === "string" ? [value] : [...value];
}

export function resolveModel(publicName: string, model: RawModel): ModelSettings {
  return {
    publicName,
    id: model.id ?? publicName,
    priority: model.priority ?? 0,
    contextTokens: model.context,
    paramsB: model.params_b,
    leaderboardName: model.leaderboard_name,
    tools: model.tools,
    vision: model.vision,
    jsonSchema: model.json_schema,
    prefill: model.prefill,
    kind: model.kind,
    limits: model.limits,
  };
}

/**
 * `https://api.groq.com/openai/v1` -> `groq`; `https://openrouter.ai/api/v1` -> `openrouter`;
 * `http://127.0.0.1:19001/v1` -> `127.0.0.1-19001`. The registrable label is the one before the public suffix;
 * we approximate it as the second-to-last host label, which holds for every provider we know.
 */
export function deriveProviderName(baseUrl: string): string {
  const url = new URL(baseUrl);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const isAddress = /^[\d.]+$/.test(host) || host.includes(":") || host === "localhost";
  if (isAddress) return `${host.replaceAll(":", "-")}${url.port === "" ? "" : `-${url.port}`}`;
  const labels = host.split(".");
  return labels.length >= 2 ? (labels[labels.length - 2] ?? host) : host;
}

function stripTrailingSlash(url: string): string {
  return url.endsWith("/") ? url.slice(0, -1) : url;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

function interpolateDeep(value: unknown, env: Env, missing: Set<string>): unknown {
  if (typeof value === "string") return interpolate(value, env, missing);
  if (Array.isArray(value)) return value.map((item) => interpolateDeep(item, env, missing));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = interpolateDeep(item, env, missing);
    return out;
  }
  return value;
}

function nodeAt(document: Document, path: readonly PropertyKey[]): Node | undefined {
  const node = document.getIn(
    path.filter((key) => typeof key !== "symbol"),
    true,
  );
  return node !== null && typeof node === "object" && "range" in (node as object) ? (node as Node) : undefined;
}

function zodIssueToConfigIssue(
  issue: z.core.$ZodIssue,
  document: Document,
  at: (offset: number | undefined) => string,
): ConfigIssue {
  const path = issue.path.filter((key): key is string | number => typeof key !== "symbol");
  if (issue.code === "unrecognized_keys") {
    // Point at the unknown key itself, not at the object holding it.
    const parent = path.length === 0 ? document.contents : nodeAt(document, path);
    const key = issue.keys[0] ?? "";
    let offset: number | undefined;
    if (isMap(parent)) {
      const pair = parent.items.find((item) => String((item.key as { value?: unknown })?.value) === key);
      offset = (pair?.key as Node | undefined)?.range?.[0];
    }
    const keyPath = [...path, key].join(".");
    return {
      location: at(offset ?? nodeAt(document, path)?.range?.[0]),
      path: keyPath,
      message: `unknown key "${key}"`,
    };
  }
  let node = nodeAt(document, path);
  // A missing key has no node: point at the closest existing parent.
  for (let length = path.length - 1; node === undefined && length >= 0; length--)
    node = nodeAt(document, path.slice(0, length));
  const offset = node?.range?.[0] ?? (isSeq(document.contents) ? document.contents.range?.[0] : undefined);
  return { location: at(offset), path: path.join("."), message: issue.message };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
