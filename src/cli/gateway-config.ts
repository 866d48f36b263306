// Which config the gateway and every CLI command use: `--config PATH`, else $LLM_GATEWAY_CONFIG (empty: unset),
// else config/meta-providers.yaml; and when that default file does not exist, every built-in preset whose key
// variable is set (the "no config" mode). An explicit path that does not exist stays an error. `serve` makes that
// choice once, at start, and every reload loads the same choice again (chooseConfig, loadChosenConfig).
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse } from "yaml";
import { ConfigError } from "../config/config-error.ts";
import type { Env } from "../config/env.ts";
import { buildConfig, DEFAULT_CONFIG_PATH, type LoadedConfig, loadConfigFile } from "../config/load.ts";
import { NO_PRESET, type PresetResolver } from "../config/resolve-providers.ts";
import {
  createPresetResolver,
  isPresetBaseUrl,
  loadPresets,
  PRESET_OVERRIDE_PREFIX,
  type PresetAvailability,
  presetAvailability,
  presetOnlyConfig,
} from "../providers/presets.ts";
import { readAdjustmentsFile } from "../scoring/scoring-sources.ts";

export interface GatewayConfigSource {
  readonly loaded: LoadedConfig;
  /** The file used, or undefined in the no-config mode. */
  readonly configPath: string | undefined;
  /** Set in the no-config mode: which presets are enabled and which keys are missing. */
  readonly availability: PresetAvailability | undefined;
}

/** Where a config comes from: a file (absolute path), or the presets whose keys are set (the no-config mode). */
export type ConfigChoice = { readonly kind: "file"; readonly path: string } | { readonly kind: "presets" };

export interface ConfigChoiceOptions {
  readonly explicitPath: string | undefined;
  readonly env: Env;
  readonly cwd: string;
}

/**
 * The file named by `--config`, else by $LLM_GATEWAY_CONFIG, else the default file when it exists, else the
 * presets. An empty value counts as unset (`LLM_GATEWAY_CONFIG=` in .env would otherwise name the directory).
 */
export function chooseConfig(options: ConfigChoiceOptions): ConfigChoice {
  const named = [options.explicitPath, options.env.LLM_GATEWAY_CONFIG].find(
    (value): value is string => value !== undefined && value !== "",
  );
  const path = resolve(options.cwd, named ?? DEFAULT_CONFIG_PATH);
  return named !== undefined || existsSync(path) ? { kind: "file", path } : { kind: "presets" };
}

/** Throws ConfigError for every config problem, including "no config file and no key at all". */
export function loadGatewayConfig(options: ConfigChoiceOptions): GatewayConfigSource {
  return loadChosenConfig(chooseConfig(options), options.env);
}

/**
 * Loads a config chosen before. A file chosen stays the one read even when it is gone (then: "file not found"),
 * rather than falling back to the no-config mode: a reload would otherwise swap a config with client keys for
 * presets without any, turning authentication off.
 */
export function loadChosenConfig(choice: ConfigChoice, env: Env): GatewayConfigSource {
  if (choice.kind === "file") {
    try {
      return { loaded: loadConfigFileWithPresets(choice.path, env), configPath: choice.path, availability: undefined };
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      throw withAdjustmentsProblems(error, choice.path);
    }
  }
  const presets = loadPresets(env);
  const resolvePreset = createPresetResolver(presets);
  const availability = presetAvailability(presets, env);
  if (availability.enabled.length === 0) {
    throw new ConfigError([
      {
        location: "environment",
        path: "",
        message:
          `no config file (${DEFAULT_CONFIG_PATH}) and no provider key in the environment or .env.\n` +
          `Set at least one of these (docs/quickstart.md), or pass --config PATH:\n` +
          availability.missing.map((entry) => `  ${entry.name}: ${entry.variables}`).join("\n") +
          "\nTry the gateway without any key: npm run demo",
      },
    ]);
  }
  return {
    loaded: buildConfig(presetOnlyConfig(availability), undefined, { env, resolvePreset }),
    configPath: undefined,
    availability,
  };
}

/**
 * Reads the 17 preset files (YAML, zod: ~70 ms of CPU at start) only when an entry names a preset or has a preset's
 * base_url (recognised as that preset: a cheap scan of the files' `base_url:` lines tells), or when a
 * `LLM_GATEWAY_PRESET_*` variable is set (its typos are reported whatever the config uses). A preset that fails
 * to load fails the config as a whole, with the preset's own file:line issues, as when presets were read first.
 */
function loadConfigFileWithPresets(configPath: string, env: Env): LoadedConfig {
  if (Object.keys(env).some((name) => name.startsWith(PRESET_OVERRIDE_PREFIX))) {
    return loadConfigFile(configPath, { env, resolvePreset: createPresetResolver(loadPresets(env)) });
  }
  let resolver: PresetResolver | undefined;
  let presetError: ConfigError | undefined;
  const resolvePreset: PresetResolver = (entry) => {
    if (entry.preset === NO_PRESET || (entry.preset === undefined && !isPresetBaseUrl(entry.base_url))) return entry;
    try {
      resolver ??= createPresetResolver(loadPresets(env));
    } catch (error) {
      if (error instanceof ConfigError) presetError = error;
      throw error;
    }
    return resolver(entry);
  };
  // Asked after an entry resolved with a preset, so the presets are loaded by then.
  const withSecrets = Object.assign(resolvePreset, {
    bodySecretsOf: (preset: string) => resolver?.bodySecretsOf?.(preset) ?? [],
  });
  try {
    const loaded = loadConfigFile(configPath, { env, resolvePreset: withSecrets });
    if (presetError !== undefined) throw presetError;
    return loaded;
  } catch (error) {
    throw presetError ?? error;
  }
}

/**
 * A config with problems, plus those of its scoring adjustments file: that file is read once the config is valid
 * (it is part of building the scores), so its problems came only after the config's were fixed, a second round.
 * Where the file is comes from the raw YAML (`scoring.adjustments_file`, else model-adjustments.yaml beside it).
 */
function withAdjustmentsProblems(error: ConfigError, configPath: string): ConfigError {
  let named: unknown;
  try {
    const raw: unknown = parse(readFileSync(configPath, "utf8"));
    named = (raw as { scoring?: { adjustments_file?: unknown } } | null)?.scoring?.adjustments_file;
  } catch {
    return error; // the config itself does not read: its own problems say so
  }
  const file = typeof named === "string" && named !== "" && !named.includes("${") ? named : undefined;
  const path = resolve(dirname(configPath), file ?? "model-adjustments.yaml");
  try {
    readAdjustmentsFile(path, file !== undefined);
    return error;
  } catch (adjustmentsError) {
    if (!(adjustmentsError instanceof ConfigError)) return error;
    return new ConfigError([...error.issues, ...adjustmentsError.issues]);
  }
}
