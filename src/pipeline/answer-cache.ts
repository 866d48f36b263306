// The exact-match answer cache (`cache.enabled`): a successful answer of chat, completions or embeddings (a JSON
// body, or a stream's chunks) is kept for `cache.ttl_ms` and given again, without an upstream call, to the same
// request: the same endpoint, the same named client, the same namespace (`x-gateway-cache-namespace`) and the same body (after parsing: whitespace and number
// spelling do not matter, key order does), on a config that decides answers the same (answer-fingerprint.ts). Free
// tiers count every request, so an agent or an evaluation that repeats itself spends nothing twice.
// Exact match only, on purpose: a "similar" prompt is a different question, and a wrong cached answer is worse
// than a spent request. Kept in this process's memory, or with `state.redis_url` in Redis (shared by the
// replicas; state/redis-answer-rows.ts); bounded by count and size either way, oldest dropped first.
import { createHash } from "node:crypto";
import type { Logger } from "../logger.ts";
import type { AnswerRows, StateBackend } from "../state/state-types.ts";
import { type CachedAnswer, parseAnswer } from "./cached-answer-row.ts";

export type { CachedAnswer } from "./cached-answer-row.ts";

export interface CacheSettings {
  readonly enabled: boolean;
  /** How long an answer is given again after it was stored, in milliseconds. */
  readonly ttlMs: number;
  /** Most answers kept. */
  readonly maxEntries: number;
  /** Most bytes kept (the UTF-8 size of the answers' bodies); one answer above a tenth of it is not kept. */
  readonly maxBytes: number;
}

/*
 * The endpoints whose JSON answers are kept (front-doors.ts `isCacheable`). Responses and Messages requests reach the
 * pipeline as chat requests under their own endpoint name: the kept chat answer is translated again by their adapter
 * on a hit. Not the audio endpoints: an upload's answer is keyed by megabytes of file, and speech's answer is
 * megabytes of audio (the cache keeps text bodies, bounded by `cache.max_bytes`). Not the image endpoints: a client
 * asking again for the same prompt (or edit, or variation) wants another image (generation is random by nature), and
 * an answer of base64 images is megabytes too. Rerank is: a model scores the same documents the same way, and its answer is a short list
 * of scores.
 */

/**
 * The cache key: a SHA-256 of the config's fingerprint (answer-fingerprint.ts: what the request is turned into
 * upstream), the endpoint, the client's name, the parsed body and the request's namespace (`x-gateway-cache-namespace`).
 * The client is part of it so that one named client can never learn, from a fast answer, what another one asked;
 * the namespace comes besides it, so it partitions a client's answers and never reaches another client's. It comes
 * last, after a separator JSON never holds unescaped, so a request without one keeps the key it had before.
 */
export function cacheKey(
  fingerprint: string,
  endpoint: string,
  client: string | undefined,
  body: unknown,
  namespace?: string,
): string {
  const hash = createHash("sha256")
    .update(fingerprint)
    .update("\u0000")
    .update(endpoint)
    .update("\u0000")
    .update(client ?? "")
    .update("\u0000")
    .update(JSON.stringify(body));
  if (namespace !== undefined) hash.update("\u0000").update(namespace);
  return hash.digest("base64url");
}

export interface CacheSummary {
  /** Answers and bytes kept (shared: fleet-wide; `summary` as of this process's latest put, `currentSummary` now). */
  readonly entries: number;
  readonly bytes: number;
  /** This process's lookups since start. */
  readonly hits: number;
  readonly misses: number;
  readonly shared: boolean;
}

/** How old the fleet's figures `/stats` shows may be when shared: a dashboard polling it costs Redis one read a second. */
export const SHARED_SUMMARY_MAX_AGE_MS = 1_000;

/** What the pipeline asks of the cache, wherever it keeps its answers. */
export interface AnswerStore {
  readonly summary: CacheSummary;
  /** Whether the answers are the fleet's (Redis) rather than this process's own. */
  readonly isShared: boolean;
  /**
   * `summary` with the entries and bytes as they are now. Shared: read from Redis at most once a
   * `SHARED_SUMMARY_MAX_AGE_MS` (calls in between, and calls while a read is on its way, get that read's figures).
   */
  currentSummary(nowMs: number): CacheSummary | Promise<CacheSummary>;
  /**
   * The kept answer, if younger than the time to live and kept at most `maxAgeMs` ago (the request's `Cache-Control:
   * max-age`); counts a hit or a miss. A promise when shared.
   */
  get(
    key: string,
    settings: CacheSettings,
    nowMs: number,
    maxAgeMs?: number,
  ): CachedAnswer | undefined | Promise<CachedAnswer | undefined>;
  /** Keeps an answer; never waited for, never throws. */
  put(key: string, answer: Omit<CachedAnswer, "bytes">, settings: CacheSettings, nowMs: number): void;
  /** Drops every answer (`POST /admin/cache/clear`): how many there were. */
  clear(): Promise<number>;
  /**
   * A reload or a discovery refresh changed the fingerprint (answer-fingerprint.ts), or a reload turned the cache
   * off: drops the answers this
   * process alone holds, never waiting or failing. Shared rows stay: replicas still on that config give them, and
   * they age out for the others.
   */
  reset(): void;
}

/** The cache a gateway gets: shared when its state is (Redis), else its own memory. */
export function answerStoreFor(
  state: StateBackend,
  isEnabled: boolean,
  logger?: () => Logger | undefined,
): AnswerStore {
  if (state.answerRows === undefined) return new AnswerCache();
  if (isEnabled) state.answerRows.open();
  return new SharedAnswerCache(state.answerRows, logger);
}

export class AnswerCache implements AnswerStore {
  readonly isShared = false;
  /**
   * Insertion order is age order: a Map iterates oldest first, so answers past `ttl_ms` go from the front. An answer
   * kept for less (`keptForMs`) is not given after its own time and freed at the next lookup or put after it
   * (`#ownExpiries`).
   */
  readonly #entries = new Map<string, CachedAnswer>();
  /**
   * The answers kept for less than `ttl_ms`, soonest end first (a binary min-heap). Without it such an answer held
   * its place until `ttl_ms`, and a full cache made room by evicting the oldest live answers first (a client sending
   * `x-gateway-cache-ttl: 1` pushed every other answer out for nothing). An entry whose key was replaced or dropped
   * since is skipped when it comes up; each leaves within `ttl_ms`.
   */
  readonly #ownExpiries: OwnExpiry[] = [];
  #bytes = 0;
  #hits = 0;
  #misses = 0;

  get summary(): CacheSummary {
    return { entries: this.#entries.size, bytes: this.#bytes, hits: this.#hits, misses: this.#misses, shared: false };
  }

  currentSummary(): CacheSummary {
    return this.summary;
  }

  /** The kept answer for this key, if it is younger than the settings' time to live; counts a hit or a miss. */
  get(key: string, settings: CacheSettings, nowMs: number, maxAgeMs?: number): CachedAnswer | undefined {
    this.#expire(settings, nowMs);
    let kept = this.#entries.get(key);
    if (kept !== undefined && isPastOwnTtl(kept, nowMs)) {
      this.#delete(key);
      kept = undefined;
    }
    // Too old for this request only: kept for the others, until the fresh answer replaces it.
    const answer = isYoungEnough(kept, nowMs, maxAgeMs) ? kept : undefined;
    if (answer === undefined) this.#misses += 1;
    else this.#hits += 1;
    return answer;
  }

  /** Keeps an answer (replacing one under the same key); false when it is too large to keep. */
  put(key: string, answer: Omit<CachedAnswer, "bytes">, settings: CacheSettings, nowMs: number): boolean {
    this.#delete(key);
    const bytes = Buffer.byteLength(answer.bodyText);
    if (settings.maxEntries <= 0 || bytes > settings.maxBytes / 10) return false;
    const kept: CachedAnswer = { ...answer, bytes };
    this.#entries.set(key, kept);
    this.#bytes += bytes;
    if (kept.keptForMs !== undefined) this.#expiresOwn(key, kept, kept.keptForMs);
    this.#expire(settings, nowMs);
    for (const [oldest] of this.#entries) {
      if (this.#entries.size <= settings.maxEntries && this.#bytes <= settings.maxBytes) break;
      this.#delete(oldest);
    }
    return true;
  }

  async clear(): Promise<number> {
    const dropped = this.#entries.size;
    this.reset();
    return dropped;
  }

  /**
   * Notes when an answer kept for less than `ttl_ms` ends. An entry of a replaced or dropped answer would hold that
   * answer's memory until its own end: past twice the answers kept (plus a few), the heap keeps only current ones,
   * so it stays within about twice `max_entries` however often a key is replaced (amortised: one rebuild per as many
   * puts as it holds).
   */
  #expiresOwn(key: string, kept: CachedAnswer, keptForMs: number): void {
    const expiries = this.#ownExpiries;
    pushExpiry(expiries, { atMs: kept.storedAtMs + keptForMs, key, kept });
    if (expiries.length <= 2 * this.#entries.size + 64) return;
    const current = expiries.filter((entry) => this.#entries.get(entry.key) === entry.kept);
    expiries.length = 0;
    for (const entry of current) pushExpiry(expiries, entry);
  }

  reset(): void {
    this.#entries.clear();
    this.#ownExpiries.length = 0;
    this.#bytes = 0;
  }

  #expire(settings: CacheSettings, nowMs: number): void {
    const expiries = this.#ownExpiries;
    while (expiries.length > 0 && (expiries[0] as OwnExpiry).atMs <= nowMs) {
      const { key, kept } = popExpiry(expiries);
      if (this.#entries.get(key) === kept) this.#delete(key);
    }
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

/**
 * Answers kept in rows shared through Redis. An unreachable Redis is a miss (the request goes to a provider), and a
 * put that fails is dropped: the cache never fails or delays a request by more than one command's timeout.
 */
export class SharedAnswerCache implements AnswerStore {
  readonly isShared = true;
  readonly #rows: AnswerRows;
  #entries = 0;
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  /** When the fleet's figures were last asked of Redis, and that read while it is on its way. */
  #countedAtMs = Number.NEGATIVE_INFINITY;
  #counting: Promise<CacheSummary> | undefined;

  /** The gateway's log, for the first shared row this process refused (once: a fleet's old rows would flood it). */
  readonly #logger: (() => Logger | undefined) | undefined;
  #hasLoggedRefusedRow = false;

  constructor(rows: AnswerRows, logger?: () => Logger | undefined) {
    this.#rows = rows;
    this.#logger = logger;
  }

  get summary(): CacheSummary {
    return { entries: this.#entries, bytes: this.#bytes, hits: this.#hits, misses: this.#misses, shared: true };
  }

  /**
   * The fleet's figures (other replicas' puts and evictions included), at most `SHARED_SUMMARY_MAX_AGE_MS` old: a
   * dashboard polling `/stats`, or many of them, costs Redis one read a second, and calls while a read is on its
   * way share it. Unreachable: those last seen (a read, or this process's latest put).
   */
  currentSummary(nowMs: number): CacheSummary | Promise<CacheSummary> {
    if (this.#counting !== undefined) return this.#counting;
    if (nowMs - this.#countedAtMs < SHARED_SUMMARY_MAX_AGE_MS) return this.summary;
    this.#countedAtMs = nowMs;
    const counting = this.#rows.count().then(
      (held) => {
        this.#entries = held.entries;
        this.#bytes = held.bytes;
        return this.summary;
      },
      // Redis unreachable or slow past its command timeout: /stats answers with what this process last saw.
      () => this.summary,
    );
    this.#counting = counting;
    void counting.finally(() => {
      this.#counting = undefined;
    });
    return counting;
  }

  async get(key: string, settings: CacheSettings, nowMs: number, maxAgeMs?: number): Promise<CachedAnswer | undefined> {
    let answer: CachedAnswer | undefined;
    try {
      const json = await this.#rows.get(key, nowMs - settings.ttlMs);
      answer = json === undefined ? undefined : parseAnswer(json);
      if (json !== undefined && answer === undefined) this.#refusedRow();
    } catch {
      answer = undefined;
    }
    // Kept for less than `ttl_ms` by its request: not given after its own time (the row goes with `ttl_ms`).
    if (answer !== undefined && isPastOwnTtl(answer, nowMs)) answer = undefined;
    if (!isYoungEnough(answer, nowMs, maxAgeMs)) answer = undefined;
    if (answer === undefined) this.#misses += 1;
    else this.#hits += 1;
    return answer;
  }

  /** A row under the key that is no answer: a miss (the request goes to a provider), said once in the log. */
  #refusedRow(): void {
    if (this.#hasLoggedRefusedRow) return;
    this.#hasLoggedRefusedRow = true;
    this.#logger?.()?.warn(
      {},
      "the answer cache's shared rows hold one that is not an answer this version gives (another version's, or damaged): taken as a miss (logged once)",
    );
  }

  put(key: string, answer: Omit<CachedAnswer, "bytes">, settings: CacheSettings, _nowMs: number): void {
    const bytes = Buffer.byteLength(answer.bodyText);
    if (settings.maxEntries <= 0 || bytes > settings.maxBytes / 10) return;
    const keptUntilMs = answer.keptForMs === undefined ? undefined : answer.storedAtMs + answer.keptForMs;
    this.#rows.put(key, JSON.stringify({ ...answer, bytes }), answer.storedAtMs, settings, keptUntilMs).then(
      (kept) => {
        this.#entries = kept.entries;
        this.#bytes = kept.bytes;
      },
      () => {},
    );
  }

  async clear(): Promise<number> {
    const dropped = await this.#rows.clear();
    this.#entries = 0;
    this.#bytes = 0;
    // The figures just read are gone with the rows: the next /stats reads them again.
    this.#countedAtMs = Number.NEGATIVE_INFINITY;
    return dropped;
  }

  reset(): void {}
}

/** When an answer kept for less than `ttl_ms` ends, and which one (its key may hold another answer by then). */
interface OwnExpiry {
  readonly atMs: number;
  readonly key: string;
  readonly kept: CachedAnswer;
}

function pushExpiry(heap: OwnExpiry[], entry: OwnExpiry): void {
  let index = heap.push(entry) - 1;
  while (index > 0) {
    const parent = (index - 1) >> 1;
    if ((heap[parent] as OwnExpiry).atMs <= entry.atMs) break;
    heap[index] = heap[parent] as OwnExpiry;
    index = parent;
  }
  heap[index] = entry;
}

/** Removes and returns the soonest end (the heap is not empty). */
function popExpiry(heap: OwnExpiry[]): OwnExpiry {
  const top = heap[0] as OwnExpiry;
  const last = heap.pop() as OwnExpiry;
  if (heap.length === 0) return top;
  let index = 0;
  for (;;) {
    const left = 2 * index + 1;
    if (left >= heap.length) break;
    const right = left + 1;
    const child =
      right < heap.length && (heap[right] as OwnExpiry).atMs < (heap[left] as OwnExpiry).atMs ? right : left;
    if ((heap[child] as OwnExpiry).atMs >= last.atMs) break;
    heap[index] = heap[child] as OwnExpiry;
    index = child;
  }
  heap[index] = last;
  return top;
}

/** Kept for less than the cache's time to live by its request (`x-gateway-cache-ttl`), and that time is past. */
function isPastOwnTtl(answer: CachedAnswer, nowMs: number): boolean {
  return answer.keptForMs !== undefined && answer.storedAtMs + answer.keptForMs <= nowMs;
}

/** `Cache-Control: max-age`: an answer kept at most that long ago (none asked: any the time to live keeps). */
function isYoungEnough(answer: CachedAnswer | undefined, nowMs: number, maxAgeMs: number | undefined): boolean {
  return answer !== undefined && (maxAgeMs === undefined || nowMs - answer.storedAtMs <= maxAgeMs);
}
