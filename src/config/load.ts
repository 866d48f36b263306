// Config loading: YAML (with a LineCounter, so every problem names file:line) -> ${ENV} interpolation -> the
// schema (validation, defaults, camelCase) -> what the schema cannot do (presets, one provider per key,
// duplicate names, environment overrides) -> deep freeze.
import { readFileSync } from "node:fs";
import { ConfigError, type ConfigIssue } from "./config-error.ts";
import { type Env, interpolate } from "./env.ts";
import { type PresetResolver, resolveProviders } from "./resolve-providers.ts";
import { configSchema, type RawConfig } from "./schema.ts";
import type { GatewayConfig } from "./types.ts";
import { type Locate, parseYamlSource, toConfigIssues } from "./yaml-source.ts";

export const DEFAULT_CONFIG_PATH = "config/meta-providers.yaml";

export interface LoadedConfig {
  readonly config: GatewayConfig;
  /** Non-fatal problems, e.g. a provider skipped because its key variable is unset. */
  readonly warnings: readonly string[];
}

interface LoadOptions {
  env: Env;
  resolvePreset?: PresetResolver;
  /** Per provider entry, the variables its `api_key: ${...}` referenced (to name them when unset). */
  apiKeyReferences?: readonly (readonly string[])[];
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
  const { data: rawData, locate } = parseYamlSource(text, fileName);
  const data = interpolateDeep(rawData, options.env);
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
  return buildConfig(data as RawConfig, fileName, { ...options, apiKeyReferences }, locate);
}

/** Validates and resolves a config (from a file, or built in code: the demo, the no-config mode). */
export function buildConfig(
  input: RawConfig,
  sourcePath: string | undefined,
  options: LoadOptions,
  locate: Locate = () => sourcePath ?? "<config>",
): LoadedConfig {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(toConfigIssues(parsed.error.issues, locate));
  const { providers: entries, ...sections } = parsed.data;
  const { providers, skippedProviders, warnings, issues } = resolveProviders(entries, options, locate);
  issues.push(...metaModelNameIssues(Object.keys(sections.metaModels), locate));
  if (issues.length > 0) throw new ConfigError(issues);
  const config: GatewayConfig = {
    ...sections,
    sourcePath,
    server: withEnvironment(sections.server, options.env),
    providers,
    skippedProviders,
  };
  return { config: deepFreeze(config), warnings };
}

/** Checked with the providers (not in the schema) so that one run lists both kinds of cross-field problems. */
function metaModelNameIssues(names: readonly string[], locate: Locate): ConfigIssue[] {
  return names
    .filter((name) => name.includes(",") || name.includes("/"))
    .map((name) => ({
      location: locate(["meta_models", name]),
      path: `meta_models.${name}`,
      message: "a meta model name cannot contain ',' or '/'",
    }));
}

/** $PORT and $HOST win over the file; $ALLOWED_BEARER_TOKENS (comma-separated) adds client keys. */
function withEnvironment(server: GatewayConfig["server"], env: Env): GatewayConfig["server"] {
  const allowedTokens = (env.ALLOWED_BEARER_TOKENS ?? "")
    .split(",")
    .map((token) => token.trim())
    .filter((token) => token !== "");
  const envPort = env.PORT === undefined || env.PORT === "" ? undefined : Number(env.PORT);
  if (envPort !== undefined && !(Number.isInteger(envPort) && envPort >= 0 && envPort <= 65535)) {
    throw new ConfigError([{ location: "environment", path: "PORT", message: `not a port number: "${env.PORT}"` }]);
  }
  return {
    ...server,
    port: envPort ?? server.port,
    host: env.HOST === undefined || env.HOST === "" ? server.host : env.HOST,
    apiKeys: [...server.apiKeys, ...allowedTokens],
  };
}

function interpolateDeep(value: unknown, env: Env): unknown {
  if (typeof value === "string") return interpolate(value, env);
  if (Array.isArray(value)) return value.map((item) => interpolateDeep(item, env));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = interpolateDeep(item, env);
    return out;
  }
  return value;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
