// Config loading: YAML (with a LineCounter, so every problem names file:line) -> ${ENV} interpolation -> the
// schema (validation, defaults, camelCase) -> what the schema cannot do (presets, one provider per key,
// duplicate names, environment overrides, client keys left empty) -> deep freeze.

import { readFileSync } from "node:fs";
import type { z } from "zod";
import { isRecord } from "../is-record.ts";
import { allowedBearerTokens, serverKeyProblems } from "./client-keys.ts";
import { ConfigError, type ConfigIssue } from "./config-error.ts";
import {
  type Env,
  interpolateDeep,
  notSetPhrase,
  type SubstitutedValuesAt,
  substitutedValues,
  type UnsetVariablesAt,
  unsetVariables,
  valueAt,
} from "./env.ts";
import { openGatewayWarnings } from "./open-gateway-warnings.ts";
import { type PresetResolver, resolveProviders } from "./resolve-providers.ts";
import { configSchema, providerSchema, type RawConfig, type RawProvider } from "./schema.ts";
import { PARSE_ONCE } from "./schema-helpers.ts";
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
  /** Set for a file: names the unset variables behind a value that came out empty. */
  unsetVariablesAt?: UnsetVariablesAt;
  /** Set for a file: what the environment put into the value at a key path (a body rule's secrets). */
  substitutedValuesAt?: SubstitutedValuesAt;
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
  const data = withVariableNamesAsWritten(interpolateDeep(rawData, options.env), rawData);
  const unsetVariablesAt: UnsetVariablesAt = (path) => {
    const written = valueAt(rawData, path);
    return typeof written === "string" ? unsetVariables(written, options.env) : [];
  };
  const substitutedValuesAt: SubstitutedValuesAt = (path) => substitutedValues(valueAt(rawData, path), options.env);
  return buildConfig(data as RawConfig, fileName, { ...options, unsetVariablesAt, substitutedValuesAt }, locate);
}

/** Provider keys whose values name environment variables: `${VAR}` there would substitute a key, not a name. */
const VARIABLE_NAME_KEYS = ["api_key_env_var", "api_key_env_var_aliases", "required_env_vars"] as const;

/**
 * Puts back, as written, the variable-name keys of each `providers:` entry that use `${...}`. Interpolated,
 * `api_key_env_var: ${GROQ_API_KEY}` becomes the key itself, and a key made only of letters, digits and `_` (Groq,
 * Mistral, GitHub, Hugging Face keys) passes as a variable name and was printed as "environment variable <key> is
 * not set" by `check`, the log and /health. As written it fails the name's check, whose message quotes nothing.
 */
function withVariableNamesAsWritten(data: unknown, rawData: unknown): unknown {
  const entries = isRecord(data) ? data.providers : undefined;
  const rawEntries = isRecord(rawData) ? rawData.providers : undefined;
  if (!Array.isArray(entries) || !Array.isArray(rawEntries)) return data;
  entries.forEach((entry: unknown, index) => {
    const rawEntry: unknown = rawEntries[index];
    if (!isRecord(entry) || !isRecord(rawEntry)) return;
    for (const key of VARIABLE_NAME_KEYS) {
      const written = rawEntry[key];
      const isInterpolated = Array.isArray(written)
        ? written.some((item) => typeof item === "string" && item.includes("${"))
        : typeof written === "string" && written.includes("${");
      if (isInterpolated) entry[key] = written;
    }
  });
  return data;
}

/**
 * Validates and resolves a config (from a file, or built in code: the demo, the no-config mode). Every problem is
 * gathered before one ConfigError is thrown: the schema's, and what only resolving finds (an unknown preset, a
 * duplicate provider name, a bad $PORT, no client key left), so that fixing one never reveals another.
 */
export function buildConfig(
  input: RawConfig,
  sourcePath: string | undefined,
  options: LoadOptions,
  locate: Locate = () => sourcePath ?? "<config>",
): LoadedConfig {
  const unsetVariablesAt = options.unsetVariablesAt ?? (() => []);
  const parsed = configSchema.safeParse(input, PARSE_ONCE);
  const issues = parsed.success
    ? []
    : toConfigIssues(
        parsed.error.issues.map((issue) => withUnsetVariables(issue, input, unsetVariablesAt)),
        locate,
        configSchema,
      );
  const resolved = resolveProviders(
    parsed.success ? parsed.data.providers : validProviderEntries(input),
    { ...options, unsetVariablesAt, isFromFile: sourcePath !== undefined },
    locate,
  );
  const keyProblems = serverKeyProblems(input, options.env, unsetVariablesAt, locate);
  const port = portOverride(options.env);
  issues.push(
    ...resolved.issues,
    ...metaModelNameIssues(parsed.success ? Object.keys(parsed.data.metaModels) : metaModelNames(input), locate),
    ...keyProblems.issues,
    ...(port.issue === undefined ? [] : [port.issue]),
  );
  if (!parsed.success || issues.length > 0) throw new ConfigError(byLine(issues));
  const { providers: _entries, ...sections } = parsed.data;
  const config: GatewayConfig = {
    ...sections,
    sourcePath,
    server: withEnvironment(sections.server, port.port, options.env),
    providers: resolved.providers,
    skippedProviders: resolved.skippedProviders,
  };
  return {
    config: deepFreeze(config),
    warnings: [...resolved.warnings, ...keyProblems.warnings, ...openGatewayWarnings(config.server)],
  };
}

/**
 * When the schema failed, each `providers:` entry is validated alone and the valid ones are still resolved, at
 * their own index. An entry with a problem of its own is left out: resolving it would only add echoes of that
 * problem (a misspelled `base_url` would also be "required").
 */
function validProviderEntries(input: RawConfig): (RawProvider | undefined)[] {
  const entries: unknown = (input as { providers?: unknown }).providers;
  if (!Array.isArray(entries)) return [];
  return entries.map((entry) => {
    const result = providerSchema.safeParse(entry, PARSE_ONCE);
    return result.success ? result.data : undefined;
  });
}

function metaModelNames(input: RawConfig): string[] {
  const metaModels: unknown = (input as { meta_models?: unknown }).meta_models;
  return isRecord(metaModels) ? Object.keys(metaModels) : [];
}

/** A value that came out empty because of an unset `${VAR}` says so: "Invalid URL" alone hides why. */
function withUnsetVariables(
  issue: z.core.$ZodIssue,
  input: RawConfig,
  unsetVariablesAt: UnsetVariablesAt,
): z.core.$ZodIssue {
  const path = issue.path.filter((key): key is string | number => typeof key !== "symbol");
  if (issue.code === "unrecognized_keys" || valueAt(input, path) !== "") return issue;
  const unset = unsetVariablesAt(path);
  if (unset.length === 0) return issue;
  return { ...issue, message: `${issue.message}: it is empty because ${notSetPhrase(unset)}` };
}

/** In file order (the schema's own and the later ones interleave); a stable sort, so ties keep theirs. */
function byLine(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const lineOf = (issue: ConfigIssue) => Number(/:(\d+)$/.exec(issue.location)?.[1] ?? Number.POSITIVE_INFINITY);
  return issues.toSorted((a, b) => lineOf(a) - lineOf(b));
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

/** $PORT, when set: a port number, or the problem with it. */
function portOverride(env: Env): { port?: number; issue?: ConfigIssue } {
  if (env.PORT === undefined || env.PORT === "") return {};
  const port = Number(env.PORT);
  return Number.isInteger(port) && port >= 0 && port <= 65535
    ? { port }
    : { issue: { location: "environment", path: "PORT", message: `not a port number: "${env.PORT}"` } };
}

/** $PORT and $HOST win over the file; $ALLOWED_BEARER_TOKENS (comma-separated) adds client keys. */
function withEnvironment(server: GatewayConfig["server"], port: number | undefined, env: Env): GatewayConfig["server"] {
  return {
    ...server,
    port: port ?? server.port,
    host: env.HOST === undefined || env.HOST === "" ? server.host : env.HOST,
    apiKeys: [...server.apiKeys, ...allowedBearerTokens(env)],
    apiKeyNames: [...server.apiKeyNames, ...allowedBearerTokens(env).map(() => null)],
  };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
