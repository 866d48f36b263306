// Context windows and capabilities from LiteLLM's model table (data/model-metadata/), indexed once at load.

import { readFile } from "../async-fs.ts";
import { isRecord } from "../is-record.ts";
import { normaliseModelName } from "../providers/model-names.ts";

export interface ModelCapabilities {
  /** `supports_function_calling`. */
  readonly tools: boolean;
  /** `supports_vision`. */
  readonly vision: boolean;
  /** `supports_response_schema`. */
  readonly jsonSchema: boolean;
  /** `supports_reasoning`: the model takes `reasoning_effort`. */
  readonly reasoning: boolean;
}

export interface ModelMetadataEntry {
  /** The LiteLLM key, e.g. `groq/llama-3.3-70b-versatile`. */
  readonly key: string;
  readonly litellmProvider: string | undefined;
  /** `chat`, `embedding`, `audio_transcription`, ... */
  readonly mode: string | undefined;
  /** Input context window in tokens: `max_input_tokens`, else a `max_tokens` that is not an output limit. */
  readonly contextTokens: number | undefined;
  /**
   * Output limit in tokens: `max_output_tokens`, else a legacy `max_tokens` that differs from
   * `max_input_tokens` (it is then the output limit). Equal to `contextTokens` or undefined: one shared window.
   */
  readonly maxOutputTokens: number | undefined;
  readonly capabilities: ModelCapabilities;
}

export type MetadataMatch = "provider" | "bare" | "alias";

export interface ModelMetadata extends ModelMetadataEntry {
  /** How the entry was found: under the provider's prefix, as a bare id, or by cross-provider alias. */
  readonly matchedBy: MetadataMatch;
}

export interface ModelMetadataTable {
  readonly byKey: ReadonlyMap<string, ModelMetadataEntry>;
  /** `normaliseModelName` of the key's model part -> entries, for ids no provider prefix finds. */
  readonly byAlias: ReadonlyMap<string, readonly ModelMetadataEntry[]>;
}

/**
 * Gateway provider names whose LiteLLM prefix differs from the name; any other provider name is used as the
 * prefix itself (`groq`, `gemini`, `openrouter`, `mistral`, `cerebras`, `cloudflare`, ...).
 */
const LITELLM_PROVIDER_PREFIXES: Readonly<Record<string, string>> = {
  google: "gemini",
  "google-ai-studio": "gemini",
  nvidia: "nvidia_nim",
  nim: "nvidia_nim",
  together: "together_ai",
  fireworks: "fireworks_ai",
  "cloudflare-workers-ai": "cloudflare",
  github: "github",
  "github-models": "github",
};

function positiveInteger(value: unknown): number | undefined {
  return typeof value === "number" && Number.isInteger(value) && value > 0 ? value : undefined;
}

function toEntry(key: string, value: Record<string, unknown>): ModelMetadataEntry {
  const maxInput = positiveInteger(value.max_input_tokens);
  const maxOutput = positiveInteger(value.max_output_tokens);
  // `max_tokens` is LiteLLM's legacy field: the output limit when the provider states one, else the input
  // limit (the table's `sample_spec`). It is a context window only when no output limit is given, and an output
  // limit when it differs from a stated input limit (older entries without `max_output_tokens`).
  const legacyMax = positiveInteger(value.max_tokens);
  const legacyOutput = maxInput !== undefined && legacyMax !== maxInput ? legacyMax : undefined;
  return {
    key,
    litellmProvider: typeof value.litellm_provider === "string" ? value.litellm_provider : undefined,
    mode: typeof value.mode === "string" ? value.mode : undefined,
    contextTokens: maxInput ?? (maxOutput === undefined ? legacyMax : undefined),
    maxOutputTokens: maxOutput ?? legacyOutput,
    capabilities: {
      tools: value.supports_function_calling === true,
      vision: value.supports_vision === true,
      jsonSchema: value.supports_response_schema === true,
      reasoning: value.supports_reasoning === true,
    },
  };
}

/** One table entry with the alias it is indexed under (`normaliseModelName` of its key). */
export interface AliasedMetadataEntry {
  readonly entry: ModelMetadataEntry;
  readonly alias: string;
}

/** The table's entries in file order, each with its alias: the expensive half of indexing. */
export function readModelMetadataEntries(jsonText: string): AliasedMetadataEntry[] {
  const data: unknown = JSON.parse(jsonText);
  if (!isRecord(data)) throw new Error("model metadata: expected a JSON object keyed by LiteLLM model id");
  const entries: AliasedMetadataEntry[] = [];
  for (const [key, value] of Object.entries(data)) {
    // `sample_spec` documents the fields; `last_updated` is the mirror's timestamp.
    if (key === "sample_spec" || !isRecord(value)) continue;
    entries.push({ entry: toEntry(key, value), alias: normaliseModelName(key) });
  }
  return entries;
}

/** The lookup maps over entries in file order (a later key that differs only in case wins `byKey`). */
export function indexModelMetadata(entries: readonly AliasedMetadataEntry[]): ModelMetadataTable {
  const byKey = new Map<string, ModelMetadataEntry>();
  const byAlias = new Map<string, ModelMetadataEntry[]>();
  for (const { entry, alias } of entries) {
    byKey.set(entry.key.toLowerCase(), entry);
    const list = byAlias.get(alias);
    if (list === undefined) byAlias.set(alias, [entry]);
    else list.push(entry);
  }
  return { byKey, byAlias };
}

export function parseModelMetadata(jsonText: string): ModelMetadataTable {
  return indexModelMetadata(readModelMetadataEntries(jsonText));
}

export async function loadModelMetadata(path: string): Promise<ModelMetadataTable> {
  return parseModelMetadata(await readFile(path, "utf8"));
}

export interface MetadataLookupOptions {
  /** The gateway's provider name (`groq`, `gemini`, ...); mapped through `LITELLM_PROVIDER_PREFIXES`. */
  readonly provider?: string;
}

/**
 * Finds a model's entry: `<prefix>/<id>` for the provider, then the bare id (OpenAI-style keys and ids that
 * carry their own namespace), then any entry whose alias (`normaliseModelName`) is the same. Among alias
 * candidates the provider's own entry wins, then the model vendor's bare entry, then the entry with the median
 * context window, because hosts cut windows differently and the median is the least surprising guess.
 */
export function lookupModelMetadata(
  table: ModelMetadataTable,
  modelId: string,
  options: MetadataLookupOptions = {},
): ModelMetadata | undefined {
  const id = modelId.trim().toLowerCase();
  const prefix = options.provider === undefined ? undefined : providerPrefix(options.provider);
  if (prefix !== undefined) {
    const withoutModels = id.startsWith("models/") ? id.slice("models/".length) : id;
    const lastSegment = id.slice(id.lastIndexOf("/") + 1);
    for (const candidate of [id, withoutModels, lastSegment]) {
      const entry = table.byKey.get(`${prefix}/${candidate}`);
      if (entry !== undefined) return { ...entry, matchedBy: "provider" };
    }
  }
  const bare = table.byKey.get(id) ?? table.byKey.get(id.slice(id.lastIndexOf("/") + 1));
  if (bare !== undefined) return { ...bare, matchedBy: "bare" };

  const candidates = table.byAlias.get(normaliseModelName(modelId));
  if (candidates === undefined || candidates.length === 0) return undefined;
  const own = candidates.find((entry) => prefix !== undefined && entry.key.toLowerCase().startsWith(`${prefix}/`));
  if (own !== undefined) return { ...own, matchedBy: "alias" };
  const vendor = candidates.find((entry) => !entry.key.includes("/"));
  if (vendor !== undefined) return { ...vendor, matchedBy: "alias" };
  const sized = candidates
    .filter((entry) => entry.contextTokens !== undefined)
    .sort((left, right) => (left.contextTokens ?? 0) - (right.contextTokens ?? 0) || left.key.localeCompare(right.key));
  const median = sized[Math.floor((sized.length - 1) / 2)] ?? candidates[0];
  return median === undefined ? undefined : { ...median, matchedBy: "alias" };
}

function providerPrefix(provider: string): string {
  const name = provider.toLowerCase();
  // Own properties only: a provider named `constructor` must not pick up Object.prototype's.
  return (Object.hasOwn(LITELLM_PROVIDER_PREFIXES, name) ? LITELLM_PROVIDER_PREFIXES[name] : undefined) ?? name;
}
