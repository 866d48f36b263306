// From validated `providers:` entries to one ProviderSettings per key: preset merge, derived and duplicate
// names, skipped providers (disabled, key or required variable unset), key expansion. What cannot live in the
// schema, because it needs the presets, the environment or more than one entry at once.
import type { ConfigIssue } from "./config-error.ts";
import { type Env, lookalikeVariablesHint, type SubstitutedValuesAt, type UnsetVariablesAt } from "./env.ts";
import { bodyRuleSecrets } from "./provider-secrets.ts";
import { hasControlCharacter, providerSettingsSchema, type RawProvider } from "./schema.ts";
import { PARSE_ONCE } from "./schema-helpers.ts";
import type { ProviderSettings, SkippedProvider } from "./types.ts";
import type { Locate } from "./yaml-source.ts";

/**
 * Hook for provider presets: fills in a provider entry's missing fields. It throws (with a readable message) for
 * an unknown preset; the message is reported at the entry's `preset` key.
 */
export interface PresetResolver {
  (raw: RawProvider): RawProvider;
  /**
   * What the environment put into a preset's body rules (a `${VAR}` in its file, an `LLM_GATEWAY_PRESET_*` variable's
   * value), settings left out as for the config file's own (provider-secrets.ts `bodyRuleSecrets`): secrets of every
   * provider entry that uses the preset.
   */
  readonly bodySecretsOf?: ((preset: string) => readonly string[]) | undefined;
}

/** `preset: none`: the entry is used as written, not recognised by its base_url (docs/providers.md). */
export const NO_PRESET = "none";

interface ProviderOptions {
  readonly env: Env;
  readonly resolvePreset?: PresetResolver | undefined;
  /** Names the variables behind an `api_key: ${...}` that came out empty. */
  readonly unsetVariablesAt?: UnsetVariablesAt | undefined;
  /** What the environment put into a value (the secrets of body rules written with `${...}`). */
  readonly substitutedValuesAt?: SubstitutedValuesAt | undefined;
  /**
   * Whether the entries were read from a file whose lines `locate` knows: a skipped entry then says where it is
   * written (the no-config mode and the demo build theirs in code, with no line to name).
   */
  readonly isFromFile?: boolean | undefined;
}

interface ResolvedProviders {
  readonly providers: ProviderSettings[];
  readonly skippedProviders: SkippedProvider[];
  readonly warnings: string[];
  readonly issues: ConfigIssue[];
}

/** `undefined` stands for an entry the schema refused: left out, the others keep their index. */
export function resolveProviders(
  entries: readonly (RawProvider | undefined)[],
  options: ProviderOptions,
  locate: Locate,
): ResolvedProviders {
  const result: ResolvedProviders = { providers: [], skippedProviders: [], warnings: [], issues: [] };
  /** Provider name -> the entry index that took it. */
  const names = new Map<string, number>();
  const issue = (index: number, key: string, message: string) =>
    result.issues.push({
      location: locate(["providers", index, key]),
      path: `providers.${index}.${key}`,
      message,
    });
  for (const [index, entry] of entries.entries()) {
    if (entry === undefined) continue;
    const merged = mergePreset(entry, options.resolvePreset);
    if ("error" in merged) {
      issue(index, "preset", merged.error);
      continue;
    }
    const provider = merged.provider;
    const presetOrigin =
      provider.preset === undefined || provider.preset === NO_PRESET
        ? undefined
        : { preset: provider.preset, by: entry.preset === undefined ? ("base_url" as const) : ("name" as const) };
    if (provider.base_url === undefined) {
      result.issues.push({
        location: locate(["providers", index]),
        path: `providers.${index}.base_url`,
        message: "required (or use a preset)",
      });
      continue;
    }
    const name = provider.name ?? deriveProviderName(provider.base_url);
    const previous = names.get(name);
    if (previous !== undefined) {
      issue(index, "name", `duplicate provider name "${name}" (also providers.${previous}); set a distinct \`name\``);
      continue;
    }
    names.set(name, index);
    const where = options.isFromFile === true ? { location: locate(["providers", index]) } : {};
    if (provider.enabled === false) {
      result.skippedProviders.push({ name, reason: "disabled in config", ...where });
      continue;
    }
    const unset = options.unsetVariablesAt?.(["providers", index, "api_key"]) ?? [];
    const { keys, missing } = resolveKeys(provider, options.env, unset);
    const skipReason = skipReasonOf(provider, keys.length, missing, options.env);
    if (skipReason !== undefined) {
      const skipped = { name, reason: skipReason, ...where };
      result.warnings.push(skippedProviderWarning(skipped));
      result.skippedProviders.push(skipped);
      continue;
    }
    if (missing.length > 0) {
      result.warnings.push(
        `provider "${name}": environment variable ${missing.join(", ")} is not set; using its other keys`,
      );
    }
    const fromFile = bodyRuleSecrets(
      entry,
      (path) => options.substitutedValuesAt?.(["providers", index, ...path]) ?? [],
    );
    // A preset's rules reach the entry's requests as the file's own do, their `${VAR}`s with them.
    const fromPreset =
      presetOrigin === undefined ? [] : (options.resolvePreset?.bodySecretsOf?.(presetOrigin.preset) ?? []);
    const bodySecrets = fromPreset.length === 0 ? fromFile : [...new Set([...fromFile, ...fromPreset])];
    for (const { key, position, variable } of keys) {
      if (hasControlCharacter(key)) {
        // Refused here rather than failing every request later (and being counted against the provider).
        issue(
          index,
          "api_key_env_var",
          `environment variable ${variable} contains a control character (CR, LF, ...), which cannot be sent in an HTTP header; check its value or its .env line`,
        );
        continue;
      }
      const keyName = keyProviderName(name, position);
      if (keyName !== name) {
        const taken = names.get(keyName);
        if (taken !== undefined) {
          issue(
            index,
            "api_key_env_var",
            `key ${position + 1} would be provider "${keyName}", a name providers.${taken} already has`,
          );
          continue;
        }
        names.set(keyName, index);
      }
      result.providers.push(settingsOf(provider, keyName, key, presetOrigin, bodySecrets));
    }
  }
  return result;
}

/** How `check`, `providers` and the start log say that a provider got a preset by its base_url. */
export function recognisedPresetText(provider: string, preset: string): string {
  return `${provider}: recognised as the ${preset} preset by its base_url`;
}

/**
 * The warning for a skipped provider, with the entry's `file:line` (a preset entry is one line among many, and the
 * variable it names says nothing of which entry wants it). `check` leaves it out of its list of warnings: its table
 * shows it.
 */
export function skippedProviderWarning(skipped: SkippedProvider): string {
  return `provider "${skipped.name}"${locatedText(skipped)} skipped: ${skipped.reason}`;
}

/** ` (config.yaml:12)`: where a skipped entry is written, or "" when it is not in a file. */
export function locatedText(skipped: SkippedProvider): string {
  return skipped.location === undefined ? "" : ` (${skipped.location})`;
}

function mergePreset(
  entry: RawProvider,
  resolvePreset: PresetResolver | undefined,
): { provider: RawProvider } | { error: string } {
  if (resolvePreset === undefined) {
    return entry.preset === undefined || entry.preset === NO_PRESET
      ? { provider: entry }
      : { error: "presets are not available here (no preset resolver was given)" };
  }
  try {
    return { provider: resolvePreset(entry) };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

/** Between a missing key and the other required variables that are unset too, in a skip reason. */
export const ALSO_REQUIRED_SEPARATOR = "; also required and not set: ";

/** Why a provider with keys configured is left out: no key set, or a required variable unset. */
function skipReasonOf(
  provider: RawProvider,
  keyCount: number,
  missing: readonly string[],
  env: Env,
): string | undefined {
  const missingRequired = (provider.required_env_vars ?? []).filter(
    (variable) => nonEmpty(env[variable]) === undefined,
  );
  if (keyCount === 0) {
    // Every variable still to set, in one go: naming the required ones only once the key was set (as before) sent
    // a Cloudflare user back a second time for CLOUDFLARE_ACCOUNT_ID.
    const wanted = missing.flatMap((names) => names.split(" or "));
    const alsoRequired = missingRequired.length > 0 ? `${ALSO_REQUIRED_SEPARATOR}${missingRequired.join(", ")}` : "";
    if (provider.api_key === "") {
      const why = missing.length > 0 ? `environment variable ${missing.join(", ")} is not set` : "api_key is empty";
      return `no API key: ${why}${lookalikeVariablesHint(wanted, env)}${notInsteadHint(provider, env)}${alsoRequired}`;
    }
    return missing.length > 0
      ? `no API key: environment variable ${missing.join(", ")} is not set${lookalikeVariablesHint(wanted, env)}${alsoRequired}`
      : `no API key: set api_key_env_var or api_key${alsoRequired}`;
  }
  return missingRequired.length > 0 ? `environment variable ${missingRequired.join(", ")} is not set` : undefined;
}

/**
 * For an entry whose written `api_key` came out empty while its `api_key_env_var` (its own, or a preset's) is set:
 * that this variable is not used in its place (it was, before), and how to use it.
 */
function notInsteadHint(provider: RawProvider, env: Env): string {
  const variables = [provider.api_key_env_var ?? [], provider.api_key_env_var_aliases ?? []].flat();
  const set = variables.find((variable) => nonEmpty(env[variable]) !== undefined);
  return set === undefined
    ? ""
    : `; ${set} is set but not used in its place (api_key is written): remove api_key to use it`;
}

/** The keys that are set, with their position in `api_key_env_var` (which names the provider they become). */
function resolveKeys(
  provider: RawProvider,
  env: Env,
  unsetInApiKey: readonly string[],
): { keys: { key: string; position: number; variable: string }[]; missing: string[] } {
  if (provider.api_key !== undefined && provider.api_key !== "") {
    return { keys: [{ key: provider.api_key, position: 0, variable: "api_key" }], missing: [] };
  }
  // Written but empty (`api_key: ${MY_GROQ}` with MY_GROQ unset): the entry has no key, rather than the key of
  // `api_key_env_var` (a preset's GROQ_API_KEY). `api_key` says which key, so which account, this entry uses; two
  // entries `${TEAM_A}` and `${TEAM_B}` with both unset would otherwise both quietly send with one third key.
  if (provider.api_key === "") return { keys: [], missing: [...unsetInApiKey] };
  const variables =
    provider.api_key_env_var === undefined
      ? []
      : Array.isArray(provider.api_key_env_var)
        ? provider.api_key_env_var
        : [provider.api_key_env_var];
  const keys: { key: string; position: number; variable: string }[] = [];
  const missing: string[] = [];
  variables.forEach((variable, position) => {
    // Aliases are other names of the first variable (GOOGLE_API_KEY for GEMINI_API_KEY), not more keys.
    const candidates = position === 0 ? [variable, ...(provider.api_key_env_var_aliases ?? [])] : [variable];
    const found = candidates.find((name) => nonEmpty(env[name]) !== undefined);
    if (found === undefined) missing.push(candidates.join(" or "));
    else keys.push({ key: env[found] as string, position, variable: found });
  });
  return { keys, missing };
}

/** The entry's fields the settings schema reads; the rest (`preset`, `enabled`, key variables) is spent here. */
function settingsOf(
  provider: RawProvider,
  name: string,
  apiKey: string,
  presetOrigin: { preset: string; by: "name" | "base_url" } | undefined,
  bodySecrets: readonly string[],
): ProviderSettings {
  return providerSettingsSchema.parse(
    {
      ...provider,
      name,
      api_key: apiKey,
      preset_origin: presetOrigin,
      body_secrets: bodySecrets,
    },
    PARSE_ONCE,
  );
}

/**
 * Separator between a provider's name and its key number when one entry has several keys: `groq`, `groq.2`,
 * `groq.3` (valid in provider names, and rare in hand-written ones). The number is the key variable's position
 * in `api_key_env_var`, so a name always means the same key even when another one is unset.
 */
function keyProviderName(name: string, keyPosition: number): string {
  return keyPosition === 0 ? name : `${name}.${keyPosition + 1}`;
}

/**
 * `https://api.groq.com/openai/v1` -> `groq`; `https://openrouter.ai/api/v1` -> `openrouter`;
 * `http://127.0.0.1:19001/v1` -> `127.0.0.1-19001`. The registrable label is the one before the public suffix;
 * we approximate it as the second-to-last host label, or the third-to-last under a country's generic second level
 * (`api.example.co.uk` -> `example`, not `co`), without shipping the public suffix list for a default name.
 */
/** Generic second levels under country codes (`co.uk`, `com.au`, `co.jp`, `ac.in`, `ne.jp`, ...). */
const COUNTRY_SECOND_LEVELS: ReadonlySet<string> = new Set(["co", "com", "net", "org", "ac", "gov", "edu", "ne", "or"]);

function deriveProviderName(baseUrl: string): string {
  const url = new URL(baseUrl);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const isAddress = /^[\d.]+$/.test(host) || host.includes(":") || host === "localhost";
  if (isAddress) return `${host.replaceAll(":", "-")}${url.port === "" ? "" : `-${url.port}`}`;
  const labels = host.split(".");
  const last = labels.length - 1;
  const isCountrySecondLevel =
    labels.length >= 3 && (labels[last] ?? "").length === 2 && COUNTRY_SECOND_LEVELS.has(labels[last - 1] ?? "");
  const registrable = isCountrySecondLevel ? labels[last - 2] : labels.length >= 2 ? labels[last - 1] : undefined;
  return registrable ?? host;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
