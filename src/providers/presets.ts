// Built-in provider presets: one YAML file per provider in ./presets/ (base URL, key variables, rate-limit
// dialect, discovery quirks, known free-tier limits with their sources). A config entry `- preset: groq` starts
// from the file and overrides any field; docs/providers.md describes every preset and the merge rules.
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { type Document, isSeq, LineCounter, parse, parseDocument } from "yaml";
import { z } from "zod";
import { ConfigError, type ConfigIssue } from "../config/config-error.ts";
import { didYouMean } from "../config/did-you-mean.ts";
import { type Env, interpolateDeep, lookalikeVariablesHint } from "../config/env.ts";
import { presetBodySecrets } from "../config/provider-secrets.ts";
import { NO_PRESET, type PresetResolver } from "../config/resolve-providers.ts";
import { providerSchema, type RawConfig, type RawKnownModel, type RawProvider } from "../config/schema.ts";
import { PARSE_ONCE } from "../config/schema-helpers.ts";
import { knownKeysAt } from "../config/schema-keys.ts";
import { sourcePath } from "../source-paths.ts";
import { matchPresetUrl, presetBaseUrlTemplates } from "./preset-urls.ts";

export const PRESETS_DIR = sourcePath("providers/presets");

/** `LLM_GATEWAY_PRESET_<PRESET>_<FIELD>=<YAML value>` overrides one field of a preset (docs/providers.md). */
export const PRESET_OVERRIDE_PREFIX = "LLM_GATEWAY_PRESET_";

const sourceSchema = z.strictObject({
  url: z.url({ protocol: /^https$/ }),
  /** When the source was read, or the date it gives for its figures: YYYY-MM-DD. */
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "YYYY-MM-DD"),
  /** Which fields or numbers this source backs. */
  covers: z.string().min(1),
});

const presetFileSchema = providerSchema
  .omit({ name: true, preset: true })
  .extend({
    description: z.string().min(1),
    signup_url: z.url({ protocol: /^https$/ }),
    /** Behaviour worth knowing that is not a field: body quirks, what the free tier really is. */
    notes: z.array(z.string().min(1)).optional(),
    sources: z.array(sourceSchema).min(1),
  })
  .refine((preset) => preset.base_url !== undefined, { message: "a preset needs base_url", path: ["base_url"] })
  .refine((preset) => preset.api_key_env_var !== undefined, {
    message: "a preset needs api_key_env_var",
    path: ["api_key_env_var"],
  });

export type PresetSource = z.infer<typeof sourceSchema>;

export interface Preset {
  readonly name: string;
  readonly file: string;
  readonly description: string;
  readonly signupUrl: string;
  readonly notes: readonly string[];
  readonly sources: readonly PresetSource[];
  /** The provider fields, interpolated and validated; `name` is the preset's name. */
  readonly provider: RawProvider;
  /** What the environment put into its body rules: secrets, as a config file's (PresetResolver.bodySecretsOf). */
  readonly bodySecrets: readonly string[];
  /** `base_url` as the file writes it, `${VAR}`s and all: what an entry's base_url is compared with. */
  readonly baseUrlTemplate: string;
  /**
   * The provider fields with some `${VAR}`s given other values than the environment's: those an entry's base_url
   * gave (the account id in a Cloudflare URL), so that the preset's `model_url` names the same account.
   */
  readonly withVariables: (values: Readonly<Record<string, string>>) => RawProvider;
}

interface PresetFile {
  readonly name: string;
  readonly file: string;
  readonly data: unknown;
  readonly document: Document;
  readonly lineCounter: LineCounter;
}

const filesByDir = new Map<string, readonly PresetFile[]>();

/** Parses every `*.yaml` in `dir` once per process (YAML errors throw a ConfigError with file:line). */
function readPresetFiles(dir: string): readonly PresetFile[] {
  const cached = filesByDir.get(dir);
  if (cached !== undefined) return cached;
  const files: PresetFile[] = [];
  const issues: ConfigIssue[] = [];
  for (const entry of readdirSync(dir)
    .filter((file) => file.endsWith(".yaml"))
    .sort()) {
    const file = join(dir, entry);
    const lineCounter = new LineCounter();
    const document = parseDocument(readFileSync(file, "utf8"), { lineCounter, uniqueKeys: true });
    for (const error of document.errors) {
      issues.push({
        location: `${file}:${lineCounter.linePos(error.pos[0]).line}`,
        path: "",
        message: error.message.split("\n")[0] ?? "",
      });
    }
    files.push({ name: basename(entry, ".yaml"), file, data: document.toJS() ?? {}, document, lineCounter });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  filesByDir.set(dir, files);
  return files;
}

/**
 * Every preset, `${VAR}` interpolated from `env` and validated, with `LLM_GATEWAY_PRESET_<PRESET>_<FIELD>`
 * overrides applied. Throws a ConfigError listing every problem (file:line for files, the variable for env).
 */
export function loadPresets(env: Env, dir: string = PRESETS_DIR): ReadonlyMap<string, Preset> {
  const files = readPresetFiles(dir);
  const issues: ConfigIssue[] = [];
  const presets = new Map<string, Preset>();
  const overrides = readOverrides(env, files, issues);
  for (const presetFile of files) {
    const fields = (values: Env) => {
      const interpolated = interpolateDeep(presetFile.data, values) as Record<string, unknown>;
      // An override's `${VAR}` too, as the file's: a rule written in a variable may take a secret from another one.
      const overridden = interpolateDeep(overrides.get(presetFile.name) ?? {}, values) as Record<string, unknown>;
      return presetFileSchema.safeParse({ ...interpolated, ...overridden }, PARSE_ONCE);
    };
    if (presetFile.name === NO_PRESET) {
      issues.push({ location: presetFile.file, path: "", message: `"${NO_PRESET}" means no preset: rename the file` });
      continue;
    }
    const parsed = fields(env);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const path = issue.path.filter((key): key is string | number => typeof key !== "symbol");
        const overrideVariable = overrideVariableName(presetFile.name, String(path[0] ?? ""));
        const isFromEnv = path.length > 0 && env[overrideVariable] !== undefined;
        const location = isFromEnv ? `environment ${overrideVariable}` : locate(presetFile, path);
        if (issue.code !== "unrecognized_keys") {
          issues.push({ location, path: path.join("."), message: issue.message });
          continue;
        }
        const known = knownKeysAt(presetFileSchema, path);
        for (const key of issue.keys) {
          issues.push({
            location: isFromEnv ? location : locate(presetFile, [...path, key]),
            path: [...path, key].join("."),
            message: `unknown key "${key}"${didYouMean(key, known)}`,
          });
        }
      }
      continue;
    }
    const providerOf = (data: typeof parsed.data): RawProvider => {
      const { description: _description, signup_url: _signupUrl, notes: _notes, sources: _sources, ...provider } = data;
      return { name: presetFile.name, ...provider };
    };
    const { description, signup_url, notes, sources } = parsed.data;
    presets.set(presetFile.name, {
      name: presetFile.name,
      file: presetFile.file,
      description,
      signupUrl: signup_url,
      notes: notes ?? [],
      sources,
      provider: providerOf(parsed.data),
      bodySecrets: presetBodySecrets(parsed.data, presetFile.data, overrides.get(presetFile.name), env),
      baseUrlTemplate: String((presetFile.data as { base_url?: unknown }).base_url),
      withVariables: (values) => {
        const again = fields({ ...env, ...values });
        if (!again.success)
          throw new Error(again.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; "));
        return providerOf(again.data);
      },
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return presets;
}

/**
 * The resolver `loadConfigFile` / `buildConfig` take: expands `- preset: name` entries, and an entry without
 * `preset:` whose base_url is a preset's (recognisePreset). `preset: none` keeps an entry as it is written.
 */
export function createPresetResolver(presets: ReadonlyMap<string, Preset>): PresetResolver {
  const templates = new Map([...presets.values()].map((preset) => [preset.name, preset.baseUrlTemplate]));
  const resolve = (entry: RawProvider): RawProvider => {
    if (entry.preset === NO_PRESET) return entry;
    if (entry.preset === undefined) return recognisePreset(entry, presets, templates);
    const preset = presets.get(entry.preset);
    if (preset === undefined) {
      const known = [...presets.keys()];
      throw new Error(
        `unknown preset "${entry.preset}"${didYouMean(entry.preset, known)}; known presets: ${known.join(", ")}`,
      );
    }
    const merged = mergeProvider(preset.provider, entry);
    const checked = providerSchema.safeParse(merged, PARSE_ONCE);
    if (!checked.success) {
      const problems = checked.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
      throw new Error(`preset "${entry.preset}" with this entry's fields is invalid: ${problems.join("; ")}`);
    }
    return checked.data;
  };
  return Object.assign(resolve, { bodySecretsOf: (name: string) => presets.get(name)?.bodySecrets ?? [] });
}

/**
 * Whether `baseUrl` is a built-in preset's, read from the preset files' `base_url:` lines alone (no YAML, no
 * schema): lets a loader skip loading the presets for a config that neither names nor points at one.
 */
export function isPresetBaseUrl(baseUrl: string | undefined, dir: string = PRESETS_DIR): boolean {
  return baseUrl !== undefined && matchPresetUrl(baseUrl, presetBaseUrlTemplates(dir)) !== undefined;
}

/**
 * An entry written without `preset:` whose base_url is a preset's gets that preset under what it writes, as if it
 * named it (docs/providers.md "Recognised by the base URL"), with two differences that keep what it already meant:
 * its name stays its own (written, or derived from the URL: pinned model names and stored budgets keep theirs); and
 * a `${VAR}` of the preset's URL takes the value the entry's URL has (a Cloudflare account id), which is then not a
 * variable the entry needs. An entry writing `api_key` does not get the preset's key variables (an empty
 * `api_key: ${UNSET}` is no key for any entry: resolve-providers.ts). The result
 * carries `preset:` set, which tells resolve-providers.ts it was recognised.
 */
function recognisePreset(
  entry: RawProvider,
  presets: ReadonlyMap<string, Preset>,
  templates: ReadonlyMap<string, string>,
): RawProvider {
  const match = entry.base_url === undefined ? undefined : matchPresetUrl(entry.base_url, templates);
  const preset = match === undefined ? undefined : presets.get(match.preset);
  if (match === undefined || preset === undefined) return entry;
  const captured = Object.keys(match.variables);
  let fields: RawProvider;
  try {
    fields = captured.length === 0 ? preset.provider : preset.withVariables(match.variables);
  } catch (error) {
    throw new Error(
      `base_url is the ${preset.name} preset's, whose fields are then invalid: ${(error as Error).message}`,
    );
  }
  const { name: _name, required_env_vars, api_key_env_var, api_key_env_var_aliases, ...rest } = fields;
  const stillRequired = (required_env_vars ?? []).filter((variable) => !captured.includes(variable));
  const base: RawProvider = {
    ...rest,
    ...(stillRequired.length > 0 ? { required_env_vars: stillRequired } : {}),
    ...(entry.api_key === undefined ? { api_key_env_var, api_key_env_var_aliases } : {}),
  };
  const checked = providerSchema.safeParse(
    { ...mergeProvider(dropUndefined(base), entry), preset: preset.name },
    PARSE_ONCE,
  );
  if (!checked.success) {
    const problems = checked.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new Error(
      `base_url is the ${preset.name} preset's, and with this entry's fields it is invalid: ${problems.join("; ")}`,
    );
  }
  return checked.data;
}

/**
 * A config entry over a preset: the entry's fields win. `headers`, `limits` and `known_models` (per model, its
 * `limits` too) merge key by key; everything else, lists and `models:` included, is replaced. An entry that names
 * its own key (`api_key_env_var` or `api_key`) drops the preset's key aliases.
 */
export function mergeProvider(preset: RawProvider, entry: RawProvider): RawProvider {
  const ownsKey = entry.api_key_env_var !== undefined || entry.api_key !== undefined;
  const { api_key_env_var_aliases: presetAliases, ...presetRest } = preset;
  const aliases = ownsKey ? entry.api_key_env_var_aliases : (entry.api_key_env_var_aliases ?? presetAliases);
  const merged: RawProvider = { ...presetRest, ...entry };
  if (aliases !== undefined) merged.api_key_env_var_aliases = aliases;
  if (preset.headers !== undefined || entry.headers !== undefined) {
    merged.headers = { ...preset.headers, ...entry.headers };
  }
  if (preset.limits !== undefined || entry.limits !== undefined) merged.limits = { ...preset.limits, ...entry.limits };
  if (preset.known_models !== undefined && entry.known_models !== undefined) {
    const knownModels: Record<string, RawKnownModel> = { ...preset.known_models };
    for (const [id, model] of Object.entries(entry.known_models)) {
      const base = Object.hasOwn(knownModels, id) ? knownModels[id] : undefined;
      knownModels[id] =
        base === undefined
          ? model
          : {
              ...base,
              ...model,
              ...(base.limits === undefined && model.limits === undefined
                ? {}
                : { limits: { ...base.limits, ...model.limits } }),
            };
    }
    merged.known_models = knownModels;
  }
  return dropUndefined(merged);
}

/** The variables a preset's key can come from: the first `api_key_env_var` and its aliases. */
export function presetKeyVariables(preset: Preset): string[] {
  const variables = preset.provider.api_key_env_var;
  const first = Array.isArray(variables) ? variables[0] : variables;
  return [...(first === undefined ? [] : [first]), ...(preset.provider.api_key_env_var_aliases ?? [])];
}

export interface PresetAvailability {
  /** Presets whose key (and required variables) are set, in name order. */
  readonly enabled: readonly string[];
  /** The others, with what is missing ("GROQ_API_KEY", "GEMINI_API_KEY or GOOGLE_API_KEY"). */
  readonly missing: readonly { readonly name: string; readonly variables: string }[];
}

/** Which presets the environment has keys for. */
export function presetAvailability(presets: ReadonlyMap<string, Preset>, env: Env): PresetAvailability {
  const enabled: string[] = [];
  const missing: { name: string; variables: string }[] = [];
  const isSet = (variable: string) => (env[variable] ?? "") !== "";
  for (const preset of presets.values()) {
    const keyVariables = presetKeyVariables(preset);
    const unset: string[] = [];
    if (!keyVariables.some(isSet))
      unset.push(`${keyVariables.join(" or ")}${lookalikeVariablesHint(keyVariables, env)}`);
    for (const variable of preset.provider.required_env_vars ?? []) if (!isSet(variable)) unset.push(variable);
    if (unset.length === 0) enabled.push(preset.name);
    else missing.push({ name: preset.name, variables: unset.join(" and ") });
  }
  return { enabled, missing };
}

/** The config used when there is no config file: every preset the environment has a key for. */
export function presetOnlyConfig(availability: PresetAvailability): RawConfig {
  return { providers: availability.enabled.map((name) => ({ preset: name })) };
}

export function overrideVariableName(presetName: string, field: string): string {
  return `${PRESET_OVERRIDE_PREFIX}${presetName.toUpperCase().replaceAll("-", "_")}_${field.toUpperCase()}`;
}

/** Overridable fields: every provider key except the entry-only ones. */
const OVERRIDABLE_FIELDS = Object.keys(providerSchema.shape).filter((field) => field !== "name" && field !== "preset");

/** `LLM_GATEWAY_PRESET_*` variables by preset; a variable naming no preset field is an error (a typo). */
function readOverrides(
  env: Env,
  files: readonly PresetFile[],
  issues: ConfigIssue[],
): Map<string, Record<string, unknown>> {
  const known = new Map<string, { preset: string; field: string }>();
  for (const file of files) {
    for (const field of OVERRIDABLE_FIELDS)
      known.set(overrideVariableName(file.name, field), { preset: file.name, field });
  }
  const overrides = new Map<string, Record<string, unknown>>();
  for (const [variable, value] of Object.entries(env)) {
    if (!variable.startsWith(PRESET_OVERRIDE_PREFIX) || value === undefined) continue;
    const target = known.get(variable);
    if (target === undefined) {
      const suggestion = didYouMean(variable, [...known.keys()]);
      issues.push({
        location: "environment",
        path: variable,
        message: `names no preset field${suggestion === "" ? `: expected ${PRESET_OVERRIDE_PREFIX}<PRESET>_<FIELD>, e.g. ${overrideVariableName("groq", "base_url")}` : suggestion}`,
      });
      continue;
    }
    let parsed: unknown;
    try {
      // YAML, so that numbers, booleans and lists (`[A, B]`) can be given; a URL stays a string.
      parsed = parse(value);
    } catch (error) {
      issues.push({
        location: "environment",
        path: variable,
        message: `not a YAML value: ${(error as Error).message}`,
      });
      continue;
    }
    const fields = overrides.get(target.preset) ?? {};
    fields[target.field] = parsed;
    overrides.set(target.preset, fields);
  }
  return overrides;
}

function locate(file: PresetFile, path: readonly (string | number)[]): string {
  for (let length = path.length; length >= 0; length--) {
    const node = file.document.getIn(path.slice(0, length), true) as { range?: [number, number, number] } | undefined;
    const offset = node?.range?.[0];
    if (offset !== undefined) return `${file.file}:${file.lineCounter.linePos(offset).line}`;
  }
  const contents = file.document.contents;
  const offset = isSeq(contents) ? contents.range?.[0] : undefined;
  return offset === undefined ? file.file : `${file.file}:${file.lineCounter.linePos(offset).line}`;
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined)) as T;
}
