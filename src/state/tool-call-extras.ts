// The tool calls' `extra_content` the Messages and Responses doors keep between turns (protocols/tool-call-extras.ts
// says why: Gemini's thought signatures, which those protocols have no place for). In memory, bounded by count, by
// bytes and by age, shared fairly between clients (past a bound the client holding the most loses its least recently
// used value: scope-holdings.ts); what it forgets costs only the real signature (the Gemini fallback is sent instead:
// providers/thought-signatures.ts), or OpenRouter's reasoning_details, which Anthropic and Gemini behind it require.
// With an embedded state file the same calls are written there too (embedded-state-store.ts), so a restart does not
// cost a session's signatures; the file holds what memory holds, so the same rule decides what stays there.
import type { Clock } from "../clock.ts";
import { ScopeHoldings } from "./scope-holdings.ts";

/** One call's id and its `extra_content` (protocols/tool-call-extras.ts reads them; state/ may not import it). */
export interface ToolCallExtra {
  readonly id: string;
  readonly extra: Readonly<Record<string, unknown>>;
}

/**
 * The scope a client's keys start with (then the call id): never empty and never the same for two names, a name is
 * URI-encoded (no "/", "{" or "}" left in it) before the "/"; requests without a client name share `-/`. The doors
 * key what they keep by it (server/tool-call-extras-door.ts says why); the Redis store puts it in the key's hash tag.
 */
export function clientScope(client: string | null): string {
  return client === null ? "-/" : `c:${encodeURIComponent(client)}/`;
}

/** A key's scope, without its "/" (empty for a key kept without one). */
export function scopeOfKey(key: string): string {
  const end = key.indexOf("/");
  return end < 0 ? "" : key.slice(0, end);
}

export interface ToolCallExtrasStore {
  /** Keeps each call's `extra_content` by call id (a later one for the same id replaces it). */
  remember(extras: readonly ToolCallExtra[]): Promise<void>;
  /**
   * What is kept for these ids (those forgotten or never kept are absent); `ids` in history order, the newest last: a
   * shared store looks up a bounded number of them, the newest (redis-tool-call-extras.ts).
   */
  recall(ids: readonly string[]): Promise<ReadonlyMap<string, Readonly<Record<string, unknown>>>>;
  /** What this process holds for them, without a round trip (all there is unless `isShared`). */
  recallHere(ids: readonly string[]): Promise<ReadonlyMap<string, Readonly<Record<string, unknown>>>>;
  /** `recall` may find more than `recallHere`, by a round trip to a shared store (Redis). */
  readonly isShared: boolean;
}

export interface ToolCallExtrasLimits {
  readonly maxEntries: number;
  /** Bytes of the kept values as JSON text, ids included. */
  readonly maxBytes: number;
  readonly ttlMs: number;
}

/**
 * A tool loop's next turn comes seconds to minutes after the answer; an agent session may pause for hours. A
 * Gemini 3 signature is a few hundred bytes to a few KB of base64: 20,000 calls fit in the bytes bound.
 */
export const TOOL_CALL_EXTRAS_LIMITS: ToolCallExtrasLimits = {
  maxEntries: 20_000,
  maxBytes: 32 * 1024 * 1024, // 32 MiB
  ttlMs: 6 * 60 * 60 * 1000, // 6 hours
};

/**
 * One value larger than this (bytes as JSON, its id included) is not kept, anywhere (memory, the state file, Redis):
 * one must not evict all. Sized for an assistant message's `reasoning_details` (protocols/reasoning-details.ts), the
 * largest value kept: Claude's extended thinking through OpenRouter comes back whole in it, its text and the
 * signature over it, so ~16k tokens of thinking is well over 64 KiB of JSON (the cap before, which lost it) and the
 * longest thinking budgets a few hundred KB; a Gemini signature is a few KB. Beyond it the array is not kept and the next turn goes
 * without it, as after an eviction (docs/protocols.md). 32 such values fill the bytes bound: the total holds.
 */
export const MAX_EXTRA_BYTES = 1024 * 1024; // 1 MiB

/**
 * Bytes (ids, JSON and each key's own cost: REDIS_KEY_COST_BYTES) one client's values may hold in Redis, where each
 * key had only its 6 hours: a client could fill Redis with 1 MiB values without bound. 64 MiB: twice what one
 * request is given back (32 MiB, protocols/reasoning-details.ts), so two sessions under one key each keep a full history's; past it, that client's
 * oldest go, no other client's. Redis then holds at most this times the clients (each named client, and one for
 * unnamed keys). The memory store and the state file hold 32 MiB for all clients together, already below it, where
 * the client holding the most gives way (MemoryToolCallExtras).
 */
export const MAX_CLIENT_EXTRAS_BYTES = 64 * 1024 * 1024; // 64 MiB

interface Entry {
  readonly extra: Readonly<Record<string, unknown>>;
  readonly bytes: number;
  readonly expiresAtMs: number;
  /** The client scope the id starts with (scopeOfKey): whose share the value counts in. */
  readonly scope: string;
}

/** One kept call as the state file holds it (embedded-state-store.ts): a restart gives it back until it expires. */
export interface PersistedToolCallExtra {
  readonly id: string;
  readonly extra: Readonly<Record<string, unknown>>;
  readonly expiresAtMs: number;
}

/**
 * Bounded by count and bytes for all clients together, each client's values counted apart (scope-holdings.ts): past a
 * bound, the least recently used value of the client holding the most goes, so one client's long thinking evicts its
 * own, not another client's, and a lone client has the whole store. `#entries` is in write order, which is expiry
 * order (every value kept for the TTL from its write), so the expired ones are swept from its head.
 */
export class MemoryToolCallExtras implements ToolCallExtrasStore {
  readonly #entries = new Map<string, Entry>();
  readonly #holdings = new ScopeHoldings();
  readonly isShared = false;
  readonly #limits: ToolCallExtrasLimits;
  readonly #clock: Clock;
  #bytes = 0;
  /**
   * Ids kept, replaced or forgotten since the state file's last flush; undefined unless a file keeps them
   * (`trackChanges`): in memory only or behind Redis nothing would take them, and the set would only grow.
   */
  #changed: Set<string> | undefined;

  constructor(limits: ToolCallExtrasLimits, clock: Clock) {
    this.#limits = limits;
    this.#clock = clock;
  }

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  remember(extras: readonly ToolCallExtra[]): Promise<void> {
    const expiresAtMs = this.#clock.now() + this.#limits.ttlMs;
    for (const { id, extra } of extras) this.#keep(id, extra, expiresAtMs);
    this.#evict();
    return Promise.resolve();
  }

  /**
   * What the state file kept (oldest first: the least recently used stay first to go), each until its own expiry;
   * the bounds apply as to new ones. Returns how many are kept.
   */
  restore(rows: readonly PersistedToolCallExtra[]): number {
    const nowMs = this.#clock.now();
    for (const { id, extra, expiresAtMs } of rows) {
      // Never longer than the TTL from now: a file written by a clock far ahead must not keep them for ever.
      if (expiresAtMs > nowMs) this.#keep(id, extra, Math.min(expiresAtMs, nowMs + this.#limits.ttlMs));
    }
    this.#evict();
    return this.#entries.size;
  }

  /** From now on, which ids change is noted for the state file (`takeChanged`). */
  trackChanges(): void {
    this.#changed ??= new Set();
  }

  /** The ids changed since the last call (kept, replaced or forgotten); the state file writes or deletes each. */
  takeChanged(): readonly string[] {
    const changed = this.#changed;
    if (changed === undefined || changed.size === 0) return [];
    this.#changed = new Set();
    return [...changed];
  }

  /** A flush that failed: its ids are changed again, for the next one. */
  restoreChanged(ids: readonly string[]): void {
    for (const id of ids) this.#changed?.add(id);
  }

  /** The call as the state file keeps it; undefined when it is not kept (forgotten, expired, or never). */
  persisted(id: string): PersistedToolCallExtra | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined || entry.expiresAtMs <= this.#clock.now()) return undefined;
    return { id, extra: entry.extra, expiresAtMs: entry.expiresAtMs };
  }

  #keep(id: string, extra: Readonly<Record<string, unknown>>, expiresAtMs: number): void {
    const bytes = Buffer.byteLength(id) + Buffer.byteLength(JSON.stringify(extra));
    if (bytes > MAX_EXTRA_BYTES || bytes > this.#limits.maxBytes) return;
    this.#delete(id);
    const scope = scopeOfKey(id);
    this.#entries.set(id, { extra, bytes, expiresAtMs, scope });
    this.#holdings.add(scope, id, bytes);
    this.#bytes += bytes;
    this.#changed?.add(id);
  }

  recall(ids: readonly string[]): Promise<ReadonlyMap<string, Readonly<Record<string, unknown>>>> {
    const found = new Map<string, Readonly<Record<string, unknown>>>();
    const nowMs = this.#clock.now();
    for (const id of ids) {
      const entry = this.#entries.get(id);
      if (entry === undefined) continue;
      if (entry.expiresAtMs <= nowMs) {
        this.#delete(id);
        continue;
      }
      // Used again: its client's most recent now (a long agent loop sends the same calls back on every turn).
      this.#holdings.use(entry.scope, id);
      found.set(id, entry.extra);
    }
    return Promise.resolve(found);
  }

  recallHere(ids: readonly string[]): Promise<ReadonlyMap<string, Readonly<Record<string, unknown>>>> {
    return this.recall(ids);
  }

  #delete(id: string): void {
    const entry = this.#entries.get(id);
    if (entry === undefined) return;
    this.#entries.delete(id);
    this.#holdings.remove(entry.scope, id, entry.bytes);
    this.#bytes -= entry.bytes;
    this.#changed?.add(id);
  }

  #evict(): void {
    const nowMs = this.#clock.now();
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAtMs > nowMs) break;
      this.#delete(id);
    }
    const { maxEntries, maxBytes } = this.#limits;
    while (this.#entries.size > maxEntries || this.#bytes > maxBytes) {
      const victim = this.#holdings.victim(this.#entries.size > maxEntries ? "count" : "bytes");
      if (victim === undefined) return;
      this.#delete(victim);
    }
  }
}
