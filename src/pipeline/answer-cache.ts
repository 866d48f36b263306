// The exact-match answer cache (`cache.enabled`): a successful JSON answer of chat, completions or embeddings is
// kept for `cache.ttl_ms` and given again, without an upstream call, to the same request: the same endpoint, the
// same named client and the same body (after parsing: whitespace and number spelling do not matter, key order
// does). Free tiers count every request, so an agent or an evaluation that repeats itself spends nothing twice.
// Exact match only, on purpose: a "similar" prompt is a different question, and a wrong cached answer is worse
// than a spent request. Kept in this process's memory, bounded by count and size, oldest dropped first.
import { createHash } from "node:crypto";
import type { UpstreamApi } from "../upstream/forward-types.ts";

export interface CacheSettings {
  readonly enabled: boolean;
  /** How long an answer is given again after it was stored, in milliseconds. */
  readonly ttlMs: number;
  /** Most answers kept. */
  readonly maxEntries: number;
  /** Most bytes kept (the UTF-8 size of the answers' bodies); one answer above a tenth of it is not kept. */
  readonly maxBytes: number;
}

/** What a client asked of the cache (`Cache-Control` request header): `no-cache` looks nothing up, `no-store` neither stores. */
export type CacheDirective = "default" | "no-cache" | "no-store";

export interface CachedAnswer {
  /** Always `chat` today (a native Responses answer is not kept); the adapters translate it as any chat answer. */
  readonly api: UpstreamApi;
  readonly bodyText: string;
  readonly status: number;
  readonly provider: string;
  /** The upstream model id that answered. */
  readonly model: string;
  readonly cost: "free" | "paid";
  readonly storedAtMs: number;
  readonly bytes: number;
}

/**
 * The endpoints whose JSON answers are kept. Responses and Messages requests reach the pipeline as chat requests
 * under their own endpoint name: the kept chat answer is translated again by their adapter on a hit.
 */
const CACHEABLE_ENDPOINTS = new Set(["chat", "completions", "embeddings", "responses", "messages"]);

export function isCacheableEndpoint(endpoint: string): boolean {
  return CACHEABLE_ENDPOINTS.has(endpoint);
}

/**
 * The cache key: a SHA-256 of the endpoint, the client's name and the parsed body. The client is part of it so
 * that one named client can never learn, from a fast answer, what another one asked.
 */
export function cacheKey(endpoint: string, client: string | undefined, body: unknown): string {
  return createHash("sha256")
    .update(endpoint)
    .update("\u0000")
    .update(client ?? "")
    .update("\u0000")
    .update(JSON.stringify(body))
    .digest("base64url");
}

/** `Cache-Control` of a request: `no-store` wins over `no-cache`; anything else is the default. */
export function cacheDirective(header: string | readonly string[] | undefined): CacheDirective {
  const value = (Array.isArray(header) ? header.join(",") : typeof header === "string" ? header : "").toLowerCase();
  if (value === "") return "default";
  const parts = value.split(",").map((part) => part.trim());
  if (parts.includes("no-store")) return "no-store";
  if (parts.includes("no-cache") || parts.includes("max-age=0")) return "no-cache";
  return "default";
}

export class AnswerCache {
  /** Insertion order is age order (every answer is stored with the same time to live): a Map iterates oldest first. */
  readonly #entries = new Map<string, CachedAnswer>();
  #bytes = 0;
  #hits = 0;
  #misses = 0;

  /** For /stats. */
  get summary(): { entries: number; bytes: number; hits: number; misses: number } {
    return { entries: this.#entries.size, bytes: this.#bytes, hits: this.#hits, misses: this.#misses };
  }

  /** The kept answer for this key, if it is younger than the settings' time to live; counts a hit or a miss. */
  get(key: string, settings: CacheSettings, nowMs: number): CachedAnswer | undefined {
    this.#expire(settings, nowMs);
    const answer = this.#entries.get(key);
    if (answer === undefined) this.#misses += 1;
    else this.#hits += 1;
    return answer;
  }

  /** Keeps an answer (replacing one under the same key); false when it is too large to keep. */
  put(key: string, answer: Omit<CachedAnswer, "bytes">, settings: CacheSettings, nowMs: number): boolean {
    this.#delete(key);
    const bytes = Buffer.byteLength(answer.bodyText);
    if (settings.maxEntries <= 0 || bytes > settings.maxBytes / 10) return false;
    this.#entries.set(key, { ...answer, bytes });
    this.#bytes += bytes;
    this.#expire(settings, nowMs);
    for (const [oldest] of this.#entries) {
      if (this.#entries.size <= settings.maxEntries && this.#bytes <= settings.maxBytes) break;
      this.#delete(oldest);
    }
    return true;
  }

  /** Drops every answer (`POST /admin/cache/clear`, or the cache switched off by a reload). */
  clear(): number {
    const dropped = this.#entries.size;
    this.#entries.clear();
    this.#bytes = 0;
    return dropped;
  }

  #expire(settings: CacheSettings, nowMs: number): void {
    for (const [key, answer] of this.#entries) {
      if (answer.storedAtMs + settings.ttlMs > nowMs) break;
      this.#delete(key);
    }
  }

  #delete(key: string): void {
    const answer = this.#entries.get(key);
    if (answer === undefined) return;
    this.#entries.delete(key);
    this.#bytes -= answer.bytes;
  }
}
