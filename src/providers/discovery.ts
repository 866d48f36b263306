// Model discovery: GET {model_url}/models for providers that list no models in the config, with an on-disk
// cache (fresh for `discovery.max_age_ms`) so startup does not depend on every provider being up, and a
// stale cache is still better than nothing when a provider's /models is down. The cache is keyed by provider
// name, model URL and a hash of the key (another key may see other models), so a change of either is refetched.

import { createHash } from "node:crypto";
import { basename, join } from "node:path";
import type { Dispatcher } from "undici";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "../async-fs.ts";
import type { Clock } from "../clock.ts";
import { credentialQueryValues, redactedUrl } from "../config/provider-secrets.ts";
import { MAX_MODEL_NAME_CHARS } from "../config/request-bounds.ts";
import type { DiscoverySettings, ModelKind, ProviderSettings } from "../config/types.ts";
import { isRecord } from "../is-record.ts";
import type { DiscoveredModel } from "./catalog.ts";

export interface DiscoveryResult {
  readonly models: readonly DiscoveredModel[];
  readonly source: "network" | "cache" | "stale-cache" | "none";
  readonly warning?: string;
}

interface CacheFile {
  provider: string;
  baseUrl: string;
  /** SHA-256 of the key, hex: the key itself is never written to disk. */
  keyHash: string;
  fetchedAtMs: number;
  models: DiscoveredModel[];
}

/** What a cached list belongs to; a cache file for anything else is ignored (and replaced on the next fetch). */
interface CacheIdentity {
  readonly provider: string;
  readonly baseUrl: string;
  readonly keyHash: string;
}

function cacheIdentity(provider: ProviderSettings): CacheIdentity {
  // A key in the URL's query (`?key=`) is written to disk as a hash too, with the provider's key.
  const secrets = [provider.apiKeys[0], ...credentialQueryValues(provider.modelUrl)].join("\n");
  return {
    provider: provider.name,
    baseUrl: redactedUrl(provider.modelUrl),
    keyHash: createHash("sha256").update(secrets).digest("hex"),
  };
}

/** `models-<provider>-<16 hex digits of sha256(model URL, key hash)>.json` in the cache directory. */
function cacheFileName(identity: CacheIdentity): string {
  const digest = createHash("sha256").update(`${identity.baseUrl}\n${identity.keyHash}`).digest("hex");
  return `models-${identity.provider}-${digest.slice(0, 16)}.json`;
}

export interface DiscoveryOptions {
  readonly settings: DiscoverySettings;
  /** `upstream_limits.max_response_bytes`: a longer list is a failed discovery, its download stopped there. */
  readonly maxResponseBytes: number;
  readonly dispatcher: Dispatcher;
  readonly clock: Clock;
  /** Ignore a fresh cache and ask the provider (on-demand refresh). */
  readonly isForced?: boolean;
}

export async function discoverModels(provider: ProviderSettings, options: DiscoveryOptions): Promise<DiscoveryResult> {
  const identity = cacheIdentity(provider);
  const cacheDir = options.settings.cacheDir;
  const cachePath = join(cacheDir, cacheFileName(identity));
  const cached = await readCache(cachePath, identity);
  const nowMs = options.clock.now();
  // Filters apply to cached lists too, so a changed `discovery_include` takes effect without a refresh.
  const select = discoveryFilter(provider);
  if (!options.isForced && cached !== undefined && nowMs - cached.fetchedAtMs < options.settings.maxAgeMs) {
    return { models: select(cached.models), source: "cache" };
  }
  try {
    const models = await fetchModelList(provider, options);
    await writeCache(cacheDir, cachePath, { ...identity, fetchedAtMs: nowMs, models });
    return { models: select(models), source: "network" };
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    if (cached !== undefined) {
      return {
        models: select(cached.models),
        source: "stale-cache",
        warning: `provider "${provider.name}": GET /models failed (${why}); using the cached list from ${new Date(cached.fetchedAtMs).toISOString()}`,
      };
    }
    return {
      models: [],
      source: "none",
      warning: `provider "${provider.name}": GET /models failed (${why}) and there is no cached list; it serves no models until discovery succeeds`,
    };
  }
}

/**
 * `discovery_id_strip_prefix`, then `discovery_include` / `discovery_exclude` (case-insensitive regular
 * expressions searched in the upstream id). A stripped id can repeat an unstripped one: the first is kept.
 */
export function discoveryFilter(provider: ProviderSettings): (models: readonly DiscoveredModel[]) => DiscoveredModel[] {
  const include = provider.discoveryInclude.map((pattern) => new RegExp(pattern, "i"));
  const exclude = provider.discoveryExclude.map((pattern) => new RegExp(pattern, "i"));
  const prefix = provider.discoveryIdStripPrefix;
  return (models) => {
    const seen = new Set<string>();
    const kept: DiscoveredModel[] = [];
    for (const model of models) {
      const id = prefix !== undefined && model.id.startsWith(prefix) ? model.id.slice(prefix.length) : model.id;
      // A name no request can carry is not listed: `model` splits at commas, and names are bounded in length.
      if (id === "" || seen.has(id) || id.includes(",") || id.length > MAX_MODEL_NAME_CHARS) continue;
      if (include.length > 0 && !include.some((pattern) => pattern.test(id))) continue;
      if (exclude.some((pattern) => pattern.test(id))) continue;
      seen.add(id);
      kept.push(id === model.id ? model : { ...model, id });
    }
    return kept;
  };
}

/**
 * `GET {model_url}/models`, unless model_url already names the list: a path ending in `/models` (Cohere's native
 * list) or a query string (Cloudflare's `/ai/models/search?task=...`) is used as it is.
 */
export function modelListUrl(modelUrl: string): URL {
  const url = new URL(modelUrl);
  if (url.search !== "" || /\/models\/?$/.test(url.pathname)) return url;
  return new URL(`${modelUrl}/models`);
}

async function fetchModelList(provider: ProviderSettings, options: DiscoveryOptions): Promise<DiscoveredModel[]> {
  const url = modelListUrl(provider.modelUrl);
  const headers: Record<string, string> = { ...provider.headers, accept: "application/json" };
  headers.authorization = `Bearer ${provider.apiKeys[0]}`;
  const response = await options.dispatcher.request({
    origin: url.origin,
    path: `${url.pathname}${url.search}`,
    method: "GET",
    headers,
    headersTimeout: options.settings.timeoutMs,
    bodyTimeout: options.settings.timeoutMs,
    signal: AbortSignal.timeout(options.settings.timeoutMs),
  });
  if (response.statusCode !== 200) {
    // Read no further than undici's own small bound (an error body says nothing discovery uses).
    await response.body.dump();
    throw new Error(`HTTP ${response.statusCode}`);
  }
  const text = await boundedText(response.body, options.maxResponseBytes);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error("the answer is not JSON");
  }
  return parseModelList(json, provider.discoveryIdField);
}

/**
 * C0, DEL, C1 and the Unicode line separators. No real model id holds one, and an upstream's list is not trusted:
 * printed by `llm-gateway models` or `route` such an id would send escape sequences to the operator's terminal
 * (or start a forged line), so an id holding one is left out of the list.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what is matched.
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * The body as text, at most `maxBytes` of it: an upstream is not trusted with the gateway's memory, and a list
 * streamed without end (or gigabytes of one) was read whole until the discovery timeout, at link speed.
 */
export async function boundedText(
  body: AsyncIterable<Buffer> & { destroy(): unknown },
  maxBytes: number,
): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    length += chunk.length;
    if (length > maxBytes) {
      body.destroy();
      throw new Error(`the model list is larger than upstream_limits.max_response_bytes (${maxBytes} bytes)`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, length).toString("utf8");
}

/**
 * Accepts `{data:[...]}`, `{models:[...]}` (Google, Cohere), `{result:[...]}` (Cloudflare) or a bare list; the id
 * from `id`, else `name` (`idField: "name"` reverses that: Cloudflare's `id` is a UUID, its `name` the model).
 */
export function parseModelList(json: unknown, idField: "id" | "name" = "id"): DiscoveredModel[] {
  const list = Array.isArray(json)
    ? json
    : isRecord(json) && Array.isArray(json.data)
      ? json.data
      : isRecord(json) && Array.isArray(json.models)
        ? json.models
        : isRecord(json) && Array.isArray(json.result)
          ? json.result
          : undefined;
  if (list === undefined) throw new Error("no model list in the answer (expected data, models, result or a list)");
  const [first, second] = idField === "name" ? (["name", "id"] as const) : (["id", "name"] as const);
  const models: DiscoveredModel[] = [];
  for (const item of list) {
    if (typeof item === "string") {
      if (!CONTROL_CHARACTER.test(item)) models.push({ id: item });
      continue;
    }
    if (!isRecord(item)) continue;
    const firstValue = item[first];
    const secondValue = item[second];
    const id = typeof firstValue === "string" ? firstValue : typeof secondValue === "string" ? secondValue : undefined;
    if (id === undefined || id === "" || CONTROL_CHARACTER.test(id)) continue;
    const context = firstPositiveNumber(
      item.context_length,
      item.context_window,
      item.max_context_length,
      item.inputTokenLimit,
    );
    const kind = kindOfListedType(item.type) ?? listedKind(item.kind);
    models.push({
      id,
      ...(context === undefined ? {} : { contextTokens: context }),
      ...(kind === undefined ? {} : { kind }),
    });
  }
  return models;
}

/**
 * The kinds a provider's list may state (Together's `type`: `chat`, `image`, `embedding`, `moderation`, `rerank`,
 * `audio` for its speech models, `transcribe`, `video`): the provider's word beats a guess from the id (its
 * `kling-*` video and `Kokoro-82M` speech models read as chat). `language` and `code` (base and code models, served
 * through chat or completions) and any other value say nothing: the id decides. Read from `type` as listed and
 * from `kind` as the cache file keeps it.
 */
const LISTED_TYPES: Readonly<Record<string, ModelKind>> = {
  chat: "chat",
  image: "image",
  embedding: "embedding",
  moderation: "moderation",
  rerank: "rerank",
  audio: "speech",
  transcribe: "transcription",
  video: "video",
};

function kindOfListedType(type: unknown): ModelKind | undefined {
  return typeof type === "string" && Object.hasOwn(LISTED_TYPES, type) ? LISTED_TYPES[type] : undefined;
}

const MODEL_KINDS: ReadonlySet<string> = new Set<ModelKind>(Object.values(LISTED_TYPES));

function listedKind(kind: unknown): ModelKind | undefined {
  return typeof kind === "string" && MODEL_KINDS.has(kind) ? (kind as ModelKind) : undefined;
}

async function readCache(path: string, identity: CacheIdentity): Promise<CacheFile | undefined> {
  try {
    const json: unknown = JSON.parse(await readFile(path, "utf8"));
    if (
      !isRecord(json) ||
      json.provider !== identity.provider ||
      json.baseUrl !== identity.baseUrl ||
      json.keyHash !== identity.keyHash ||
      typeof json.fetchedAtMs !== "number" ||
      !Array.isArray(json.models)
    ) {
      return undefined;
    }
    return { ...identity, fetchedAtMs: json.fetchedAtMs, models: parseModelList(json.models) };
  } catch {
    return undefined;
  }
}

async function writeCache(dir: string, path: string, content: CacheFile): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    // Write-then-rename so a crash never leaves a half-written cache behind.
    const temporary = `${path}.${process.pid}.tmp`;
    await writeFile(temporary, JSON.stringify(content));
    await rename(temporary, path);
    await removeOtherCacheFiles(dir, path, content.provider);
  } catch {
    // A read-only disk costs only the cache, not the discovery result.
  }
}

/** The provider's lists for an earlier URL or key (and the unkeyed `models-<provider>.json` of older versions). */
async function removeOtherCacheFiles(dir: string, keptPath: string, provider: string): Promise<void> {
  const kept = basename(keptPath);
  const prefix = `models-${provider}`;
  for (const file of await readdir(dir)) {
    if (file === kept || !file.startsWith(prefix)) continue;
    const rest = file.slice(prefix.length);
    if (rest === ".json" || /^-[0-9a-f]{16}\.json$/.test(rest)) await rm(join(dir, file), { force: true });
  }
}

function firstPositiveNumber(...values: unknown[]): number | undefined {
  for (const value of values) if (typeof value === "number" && Number.isFinite(value) && value > 0) return value;
  return undefined;
}
