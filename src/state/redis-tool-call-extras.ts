// The tool calls' `extra_content` (state/tool-call-extras.ts) shared between replicas through Redis: a Claude Code
// or Codex session's next turn may reach another gateway than the one that answered the call. Each call is one key
// with its own expiry (the store's TTL), all under one Redis Cluster hash tag (`{tool-call-extras}`) so that a
// request's look-up is one MGET, whichever calls its history holds. This replica's memory store sits in front:
// what it answered itself needs no round trip. A Redis failure costs the real signature only (the Gemini fallback
// is sent: providers/thought-signatures.ts), never the request.
import { isRecord } from "../is-record.ts";
import { closeClient, createCommandClient, type SharedStateRedis } from "./redis-client.ts";
import {
  MAX_EXTRA_BYTES,
  type MemoryToolCallExtras,
  type ToolCallExtra,
  type ToolCallExtrasStore,
} from "./tool-call-extras.ts";

export class RedisToolCallExtras implements ToolCallExtrasStore {
  readonly isShared = true;
  readonly #redis: SharedStateRedis;
  readonly #local: MemoryToolCallExtras;
  readonly #keyStart: string;
  readonly #ttlMs: number;

  constructor(url: string, keyPrefix: string, isCluster: boolean, local: MemoryToolCallExtras, ttlMs: number) {
    this.#redis = createCommandClient(url, isCluster);
    // Errors surface on the commands; without a listener ioredis would print every reconnection failure.
    this.#redis.on("error", () => {});
    this.#local = local;
    this.#keyStart = `${keyPrefix}{tool-call-extras}:`;
    this.#ttlMs = ttlMs;
  }

  /** Connects (the caller decides whether to wait). Never rejects. */
  async connect(): Promise<void> {
    try {
      await this.#redis.connect();
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
      writes.push(this.#redis.set(this.#keyStart + id, json, "PX", this.#ttlMs));
    }
    await Promise.all(writes);
  }

  async recall(ids: readonly string[]): Promise<ReadonlyMap<string, Readonly<Record<string, unknown>>>> {
    const found = new Map(await this.#local.recall(ids));
    const missing = ids.filter((id) => !found.has(id));
    if (missing.length === 0) return found;
    let values: (string | null)[];
    try {
      values = await this.#redis.mget(...missing.map((id) => this.#keyStart + id));
    } catch {
      return found;
    }
    const fetched: ToolCallExtra[] = [];
    for (const [index, value] of values.entries()) {
      const id = missing[index];
      if (value === null || id === undefined) continue;
      const extra = parsed(value);
      if (extra === undefined) continue;
      found.set(id, extra);
      fetched.push({ id, extra });
    }
    await this.#local.remember(fetched);
    return found;
  }

  recallHere(ids: readonly string[]): Promise<ReadonlyMap<string, Readonly<Record<string, unknown>>>> {
    return this.#local.recall(ids);
  }

  close(): Promise<void> {
    return closeClient(this.#redis);
  }
}

function parsed(value: string): Readonly<Record<string, unknown>> | undefined {
  try {
    const extra: unknown = JSON.parse(value);
    return isRecord(extra) ? extra : undefined;
  } catch {
    return undefined;
  }
}
