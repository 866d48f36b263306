// The tool calls' `extra_content` (state/tool-call-extras.ts) shared between replicas through Redis: a Claude Code
// or Codex session's next turn may reach another gateway than the one that answered the call. Each call is one key
// with its own expiry (the store's TTL), under a Redis Cluster hash tag of its client's scope
// (`{tool-call-extras:c:<client>}`): a request's keys are all its client's, so its look-up is one MGET in one slot,
// whichever calls its history holds, while the clients' keys spread over the cluster (one tag for all put every
// signature and every reasoning array, up to 1 MiB each, on one node). This replica's memory store sits in front:
// what it answered itself needs no round trip. A Redis failure costs the real signature only (the Gemini fallback
// is sent: providers/thought-signatures.ts), never the request.
import { parseJsonRecord } from "../is-record.ts";
import { closeClient, connectWithin, createCommandClient, type SharedStateRedis } from "./redis-client.ts";
import {
  MAX_EXTRA_BYTES,
  type MemoryToolCallExtras,
  scopeOfKey,
  type ToolCallExtra,
  type ToolCallExtrasStore,
} from "./tool-call-extras.ts";

export class RedisToolCallExtras implements ToolCallExtrasStore {
  readonly isShared = true;
  readonly #redis: SharedStateRedis;
  readonly #local: MemoryToolCallExtras;
  readonly #keyPrefix: string;
  readonly #ttlMs: number;

  constructor(url: string, keyPrefix: string, isCluster: boolean, local: MemoryToolCallExtras, ttlMs: number) {
    this.#redis = createCommandClient(url, isCluster);
    // Errors surface on the commands; without a listener ioredis would print every reconnection failure.
    this.#redis.on("error", () => {});
    this.#local = local;
    this.#keyPrefix = keyPrefix;
    this.#ttlMs = ttlMs;
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
    const writes: Promise<unknown>[] = [];
    for (const { id, extra } of extras) {
      const json = JSON.stringify(extra);
      if (Buffer.byteLength(id) + Buffer.byteLength(json) > MAX_EXTRA_BYTES) continue;
      writes.push(this.#redis.set(this.#keyOf(id), json, "PX", this.#ttlMs));
    }
    await Promise.all(writes);
  }

  async recall(ids: readonly string[]): Promise<ReadonlyMap<string, Readonly<Record<string, unknown>>>> {
    const found = new Map(await this.#local.recall(ids));
    const missing = ids.filter((id) => !found.has(id));
    if (missing.length === 0) return found;
    // One MGET per scope (a Cluster refuses one across slots): a request's ids are its client's, so one in all.
    const byScope = new Map<string, string[]>();
    for (const id of missing) {
      const scope = scopeOfKey(id);
      const ids = byScope.get(scope);
      if (ids === undefined) byScope.set(scope, [id]);
      else ids.push(id);
    }
    const fetched = (await Promise.all([...byScope.values()].map((ids) => this.#fetch(ids)))).flat();
    for (const { id, extra } of fetched) found.set(id, extra);
    await this.#local.remember(fetched);
    return found;
  }

  /** The kept values of `ids` (keys of one scope: one slot); none when Redis fails. */
  async #fetch(ids: readonly string[]): Promise<ToolCallExtra[]> {
    let values: (string | null)[];
    try {
      values = await this.#redis.mget(...ids.map((id) => this.#keyOf(id)));
    } catch {
      return [];
    }
    const fetched: ToolCallExtra[] = [];
    for (const [index, value] of values.entries()) {
      const id = ids[index];
      if (value === null || id === undefined) continue;
      const extra = parseJsonRecord(value);
      if (extra !== undefined) fetched.push({ id, extra });
    }
    return fetched;
  }

  /**
   * `P {tool-call-extras:c:<client>}:c:<client>/<call id>`: the scope in the hash tag too (a key without one, under
   * `{tool-call-extras}`). The scope is URI-encoded, so no brace in it ends the tag early.
   */
  #keyOf(id: string): string {
    const scope = scopeOfKey(id);
    return `${this.#keyPrefix}{tool-call-extras${scope === "" ? "" : `:${scope}`}}:${id}`;
  }

  recallHere(ids: readonly string[]): Promise<ReadonlyMap<string, Readonly<Record<string, unknown>>>> {
    return this.#local.recall(ids);
  }

  close(): Promise<void> {
    return closeClient(this.#redis);
  }
}
