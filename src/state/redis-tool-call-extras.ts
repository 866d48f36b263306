// The tool calls' `extra_content` (state/tool-call-extras.ts) shared between replicas through Redis: a Claude Code
// or Codex session's next turn may reach another gateway than the one that answered the call. Each call is one key
// with its own expiry (the store's TTL), under a Redis Cluster hash tag of its client's scope
// (`{tool-call-extras:c:<client>}`): a request's keys are all its client's, so its look-up's MGETs are in one slot,
// whichever calls its history holds, while the clients' keys spread over the cluster (one tag for all put every
// signature and every reasoning array, up to 1 MiB each, on one node). This replica's memory store sits in front:
// what it answered itself needs no round trip. A Redis failure costs the real signature only (the Gemini fallback
// is sent: providers/thought-signatures.ts), never the request.
// Bounds: each value at most MAX_EXTRA_BYTES; each client's values at most MAX_CLIENT_EXTRAS_BYTES in all, kept by one
// script (redis-tool-call-extras-lua.ts) with the scope's order, sizes and total under the same tag
// (`P {tool-call-extras:c:<client>}#order`, `#sizes`, `#bytes`: no value key has a '#' after its tag), evicting that
// client's oldest past it (without it a client filled Redis with 1 MiB values for 6 hours each); a look-up reads at
// most MAX_LOOKUP_KEYS keys, newest first, MGET_BATCH_KEYS per MGET, and stops once it read what the store in front
// holds (a history naming thousands of kept calls made one MGET of them all).
import { parseJsonRecord } from "../is-record.ts";
import {
  COMMAND_TIMEOUT_MS,
  closeClient,
  connectWithin,
  createCommandClient,
  type SharedStateRedis,
} from "./redis-client.ts";
import { type ScriptCommand, withScripts } from "./redis-scripts.ts";
import { KEEP_WITHIN_BUDGET_LUA } from "./redis-tool-call-extras-lua.ts";
import {
  MAX_CLIENT_EXTRAS_BYTES,
  MAX_EXTRA_BYTES,
  type MemoryToolCallExtras,
  scopeOfKey,
  TOOL_CALL_EXTRAS_LIMITS,
  type ToolCallExtra,
  type ToolCallExtrasStore,
} from "./tool-call-extras.ts";

/**
 * Keys one look-up reads at most, the newest (last in the history): a Gemini 3 model checks the signatures of the
 * current turn's calls, and OpenRouter's Anthropic and Gemini models the reasoning of the current tool loop; a
 * history's oldest calls beyond these go without, as after an eviction. 1,024 keys are 8 MGETs.
 */
export const MAX_LOOKUP_KEYS = 1_024;
/**
 * Keys per MGET: a short command, and a reply of at most 128 values, which the client's budget bounds at 64 MiB in
 * the worst case (up to 1 MiB each, 128 MiB without it); a history of a few hundred calls still costs one MGET.
 */
export const MGET_BATCH_KEYS = 128;

export interface RedisToolCallExtrasLimits {
  readonly ttlMs: number;
  /** Bytes (ids, JSON and REDIS_KEY_COST_BYTES each) one client's values may hold in Redis; past it, its oldest go. */
  readonly maxClientBytes: number;
  /**
   * Bytes of values one look-up reads at most, newest first: the store in front holds no more (what it read past
   * that evicted what it had just read), and no request is given back more (protocols/reasoning-details.ts).
   */
  readonly maxLookupBytes: number;
  /**
   * ms one command may take before it counts as failed (a look-up finds nothing more, a write is lost): the shared
   * state's default (COMMAND_TIMEOUT_MS), as for the kept answers.
   */
  readonly commandTimeoutMs: number;
}

export const REDIS_TOOL_CALL_EXTRAS_LIMITS: RedisToolCallExtrasLimits = {
  ttlMs: TOOL_CALL_EXTRAS_LIMITS.ttlMs,
  maxClientBytes: MAX_CLIENT_EXTRAS_BYTES,
  maxLookupBytes: TOOL_CALL_EXTRAS_LIMITS.maxBytes,
  commandTimeoutMs: COMMAND_TIMEOUT_MS,
};

export class RedisToolCallExtras implements ToolCallExtrasStore {
  readonly isShared = true;
  readonly #redis: SharedStateRedis & Record<"keepWithinBudget", ScriptCommand>;
  readonly #local: MemoryToolCallExtras;
  readonly #keyPrefix: string;
  readonly #limits: RedisToolCallExtrasLimits;

  constructor(
    url: string,
    keyPrefix: string,
    isCluster: boolean,
    local: MemoryToolCallExtras,
    limits: RedisToolCallExtrasLimits = REDIS_TOOL_CALL_EXTRAS_LIMITS,
  ) {
    this.#redis = withScripts(createCommandClient(url, isCluster, limits.commandTimeoutMs), {
      keepWithinBudget: { lua: KEEP_WITHIN_BUDGET_LUA },
    });
    // Errors surface on the commands; without a listener ioredis would print every reconnection failure.
    this.#redis.on("error", () => {});
    this.#local = local;
    this.#keyPrefix = keyPrefix;
    this.#limits = limits;
  }

  /** Connects (the caller decides whether to wait). Never rejects. */
  async connect(): Promise<void> {
    try {
      await connectWithin(this.#redis);
    } catch {
      // reconnects in the background; commands fail at once until then
    }
  }

  async remember(extras: readonly ToolCallExtra[]): Promise<void> {
    await this.#local.remember(extras);
    const byScope = new Map<string, { id: string; json: string }[]>();
    for (const { id, extra } of extras) {
      const json = JSON.stringify(extra);
      if (Buffer.byteLength(id) + Buffer.byteLength(json) > MAX_EXTRA_BYTES) continue;
      groupInto(byScope, scopeOfKey(id), { id, json });
    }
    await Promise.all([...byScope].map(([scope, values]) => this.#keep(scope, values)));
  }

  /** One script per scope (its keys share a tag: one slot), so the scope's budget holds with every replica writing. */
  async #keep(scope: string, values: readonly { readonly id: string; readonly json: string }[]): Promise<void> {
    const tag = this.#tagOf(scope);
    const keys = [`${tag}#order`, `${tag}#sizes`, `${tag}#bytes`, ...values.map(({ id }) => `${tag}:${id}`)];
    const { ttlMs, maxClientBytes } = this.#limits;
    const written = values.flatMap(({ id, json }) => [id, json]);
    await this.#redis.keepWithinBudget(keys.length, ...keys, `${tag}:`, ttlMs, maxClientBytes, ...written);
  }

  /** `ids` in history order (the newest last): see ToolCallExtrasStore.recall. */
  async recall(ids: readonly string[]): Promise<ReadonlyMap<string, Readonly<Record<string, unknown>>>> {
    const found = new Map(await this.#local.recall(ids));
    const missing = newestMissing(ids, found);
    if (missing.length === 0) return found;
    // MGETs per scope (a Cluster refuses one across slots): a request's ids are its client's, so one scope in all.
    const byScope = new Map<string, string[]>();
    for (const id of missing) groupInto(byScope, scopeOfKey(id), id);
    const fetched = (await Promise.all([...byScope.values()].map((ids) => this.#fetch(ids)))).flat();
    for (const { id, extra } of fetched) found.set(id, extra);
    // Oldest first, so that the newest are the last the store in front would evict.
    await this.#local.remember(fetched.reverse());
    return found;
  }

  /**
   * The kept values of `ids` (newest first, keys of one scope: one slot), MGET_BATCH_KEYS a time, newest first, until
   * `maxLookupBytes` were read; what one MGET failing did not read is not found (the fallback, never the request).
   */
  async #fetch(ids: readonly string[]): Promise<ToolCallExtra[]> {
    const fetched: ToolCallExtra[] = [];
    let bytes = 0;
    for (let start = 0; start < ids.length && bytes < this.#limits.maxLookupBytes; start += MGET_BATCH_KEYS) {
      const batch = ids.slice(start, start + MGET_BATCH_KEYS);
      let values: (string | null)[];
      try {
        values = await this.#redis.mget(...batch.map((id) => this.#keyOf(id)));
      } catch {
        break;
      }
      for (const [index, value] of values.entries()) {
        const id = batch[index];
        if (value === null || id === undefined) continue;
        const valueBytes = Buffer.byteLength(id) + Buffer.byteLength(value);
        // An older, smaller one may still fit, as the give-back skips one too large and goes on.
        if (bytes + valueBytes > this.#limits.maxLookupBytes) continue;
        const extra = parseJsonRecord(value);
        if (extra === undefined) continue;
        bytes += valueBytes;
        fetched.push({ id, extra });
      }
    }
    return fetched;
  }

  /**
   * `P {tool-call-extras:c:<client>}:c:<client>/<call id>`: the scope in the hash tag too (a key without one, under
   * `{tool-call-extras}`). The scope is URI-encoded, so no brace in it ends the tag early.
   */
  #keyOf(id: string): string {
    return `${this.#tagOf(scopeOfKey(id))}:${id}`;
  }

  /** `P {tool-call-extras:<scope>}`: every key of the scope starts with it. */
  #tagOf(scope: string): string {
    return `${this.#keyPrefix}{tool-call-extras${scope === "" ? "" : `:${scope}`}}`;
  }

  recallHere(ids: readonly string[]): Promise<ReadonlyMap<string, Readonly<Record<string, unknown>>>> {
    return this.#local.recall(ids);
  }

  close(): Promise<void> {
    return closeClient(this.#redis);
  }
}

function groupInto<T>(groups: Map<string, T[]>, key: string, item: T): void {
  const group = groups.get(key);
  if (group === undefined) groups.set(key, [item]);
  else group.push(item);
}

/**
 * The ids not found, each once (a history may name a call in several messages), the newest first, at most
 * MAX_LOOKUP_KEYS of them.
 */
function newestMissing(ids: readonly string[], found: ReadonlyMap<string, unknown>): string[] {
  const missing = new Set<string>();
  for (let index = ids.length - 1; index >= 0 && missing.size < MAX_LOOKUP_KEYS; index--) {
    const id = ids[index];
    if (id !== undefined && !found.has(id)) missing.add(id);
  }
  return [...missing];
}
