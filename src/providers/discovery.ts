// Model discovery: GET {model_url}/models for providers that list no models in the config, with an on-disk
// cache (fresh for `discovery.max_age_ms`) so startup does not depend on every provider being up, and a
// stale cache is still better than nothing when a provider's /models is down.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Dispatcher } from "undici";
import type { Clock } from "../clock.ts";
import type { DiscoverySettings, ProviderSettings } from "../config/types.ts";
import type { DiscoveredModel } from "./catalog.ts";

export interface DiscoveryResult {
  readonly models: readonly DiscoveredModel[];
  readonly source: "network" | "cache" | "stale-cache" | "none";
  readonly warning?: string;
}

interface CacheFile {
  baseUrl: string;
  fetchedAtMs: number;
  models: DiscoveredModel[];
}

export interface DiscoveryOptions {
  readonly settings: DiscoverySettings;
  readonly dispatcher: Dispatcher;
  readonly clock: Clock;
  /** Ignore a fresh cache and ask the provider (on-demand refresh). */
  readonly isForced?: boolean;
}

export async function discoverModels(provider: ProviderSettings, options: DiscoveryOptions): Promise<DiscoveryResult> {
  const cachePath = join(options.settings.cacheDir, `models-${provider.name}.json`);
  const cached = await readCache(cachePath, provider.modelUrl);
  const nowMs = options.clock.now();
  if (!options.isForced && cached !== undefined && nowMs - cached.fetchedAtMs < options.settings.maxAgeMs) {
    return { models: cached.models, source: "cache" };
  }
  try {
    const models = await fetchModelList(provider, options);
    await writeCache(cachePath, { baseUrl: provider.modelUrl, fetchedAtMs: nowMs, models });
    return { models, source: "network" };
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    if (cached !== undefined) {
      return {
        models: cached.models,
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

async function fetchModelList(provider: ProviderSettings, options: DiscoveryOptions): Promise<DiscoveredModel[]> {
  const url = new URL(`${provider.modelUrl}/models`);
  const headers: Record<string, string> = { ...provider.headers, accept: "application/json" };
  const key = provider.apiKeys[0];
  if (key !== undefined) headers.authorization = `Bearer ${key}`;
  const response = await options.dispatcher.request({
    origin: url.origin,
    path: `${url.pathname}${url.search}`,
    method: "GET",
    headers,
    headersTimeout: options.settings.timeoutMs,
    bodyTimeout: options.settings.timeoutMs,
    signal: AbortSignal.timeout(options.settings.timeoutMs),
  });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error("the answer is not JSON");
  }
  return parseModelList(json);
}

/** Accepts `{data:[...]}`, `{models:[...]}` or a bare list; id from `id` or `name`. */
export function parseModelList(json: unknown): DiscoveredModel[] {
  const list = Array.isArray(json)
    ? json
    : isRecord(json) && Array.isArray(json.data)
      ? json.data
      : isRecord(json) && Array.isArray(json.models)
        ? json.models
        : undefined;
  if (list === undefined) throw new Error("no model list in the answer (expected data, models or a list)");
  const models: DiscoveredModel[] = [];
  for (const item of list) {
    if (typeof item === "string") {
      models.push({ id: item });
      continue;
    }
    if (!isRecord(item)) continue;
    const id = typeof item.id === "string" ? item.id : typeof item.name === "string" ? item.name : undefined;
    if (id === undefined || id === "") continue;
    const context = firstPositiveNumber(
      item.context_length,
      item.context_window,
      item.max_context_length,
      item.inputTokenLimit,
    );
    models.push(context === undefined ? { id } : { id, contextTokens: context });
  }
  return models;
}

async function readCache(path: string, baseUrl: string): Promise<CacheFile | undefined> {
  try {
    const json: unknown = JSON.parse(await readFile(path, "utf8"));
    if (
      !isRecord(json) ||
      json.baseUrl !== baseUrl ||
      typeof json.fetchedAtMs !== "number" ||
      !Array.isArray(json.models)
    ) {
      return undefined;
    }
    return { baseUrl, fetchedAtMs: json.fetchedAtMs, models: parseModelList(json.models) };
  } catch {
    return undefined;
  }
}

async function writeCache(path: string, content: CacheFile): Promise<void> {
  try {
    await mkdir(join(path, ".."), { recursive: true });
    // Write-then-rename so a crash never leaves a half-written cache behind.
    const temporary = `${path}.${process.pid}.tmp`;
    await writeFile(temporary, JSON.stringify(content));
    await rename(temporary, path);
  } catch {
    // A read-only disk costs only the cache, not the discovery result.
  }
}

function firstPositiveNumber(...values: unknown[]): number | undefined {
  for (const value of values) if (typeof value === "number" && Number.isFinite(value) && value > 0) return value;
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
