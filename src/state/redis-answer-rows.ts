// The answer cache's rows in Redis (`cache.enabled` with `state.redis_url`), shared by every gateway on the same
// Redis and key prefix, so a request repeated on another replica is answered from the cache too. Rows are opaque
// JSON to this module (it imports nothing of the pipeline). Keys, under one hash tag so that a Redis Cluster keeps
// them in one slot and each script runs there:
//   {answers}        sorted set: cache key, scored by when its answer was kept (ms)
//   {answers}:rows   hash: cache key -> JSON
//   {answers}:bytes  string: total bytes of the rows
// Bounded like the in-memory cache: every put drops expired rows, then the oldest past `max_entries` and
// `max_bytes`, in the same script (so two replicas never count a row twice); a read ignores a row older than the
// time to live. One round trip per lookup and per put; a put is never waited for by the request.
import { closeClient, type RedisConnection } from "./redis-client.ts";
import { type ScriptCommand, withScripts } from "./redis-scripts.ts";
import type { AnswerRows } from "./state-types.ts";

type AnswerRowLimits = Parameters<AnswerRows["put"]>[3];

/**
 * KEYS: index, rows, bytes. ARGV: key, json, stored at (ms), oldest kept (ms), max entries, max bytes.
 * Returns { entries, bytes } after the put and the evictions.
 */
const PUT_LUA = `
local function drop(id)
  local length = redis.call('HSTRLEN', KEYS[2], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
  if length > 0 then return redis.call('DECRBY', KEYS[3], length) end
  return tonumber(redis.call('GET', KEYS[3]) or '0')
end
drop(ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
local total = redis.call('INCRBY', KEYS[3], string.len(ARGV[2]))
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[4], 'LIMIT', 0, 1000)) do total = drop(id) end
local maxEntries = tonumber(ARGV[5])
local maxBytes = tonumber(ARGV[6])
while redis.call('ZCARD', KEYS[1]) > maxEntries or total > maxBytes do
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)
  if #oldest == 0 then break end
  total = drop(oldest[1])
end
return { redis.call('ZCARD', KEYS[1]), total }
`;

/** KEYS: index, rows, bytes. Returns how many rows there were. */
const CLEAR_LUA = `
local count = redis.call('ZCARD', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return count
`;

type AnswerConnection = RedisConnection & Record<"answerPut" | "answerClear", ScriptCommand>;

export class RedisAnswerRows implements AnswerRows {
  readonly #keys: readonly [index: string, rows: string, bytes: string];

  readonly #connect: () => RedisConnection;
  #redisConnection: AnswerConnection | undefined;

  /**
   * `connect`: a connection of its own, opened at the first lookup (a gateway without the cache opens none); until it
   * is up, lookups miss and puts fail, never waiting. Its own because a script's first argument must not be
   * auto-pipelined with the ledger's commands on a Cluster.
   */
  constructor(connect: () => RedisConnection, keyPrefix: string) {
    this.#connect = connect;
    const base = `${keyPrefix}{answers}`;
    this.#keys = [base, `${base}:rows`, `${base}:bytes`];
  }

  get #redis(): AnswerConnection {
    if (this.#redisConnection === undefined) {
      // The scripts defined before its first command (redis-scripts.ts `withScripts`: never while one is pipelined).
      const redis = withScripts(this.#connect(), {
        answerPut: { lua: PUT_LUA, numberOfKeys: 3 },
        answerClear: { lua: CLEAR_LUA, numberOfKeys: 3 },
      });
      // Errors surface on the commands; without a listener ioredis would print every reconnection failure.
      redis.on("error", () => {});
      redis.connect().catch(() => {});
      this.#redisConnection = redis;
    }
    return this.#redisConnection;
  }

  open(): void {
    void this.#redis;
  }

  async close(): Promise<void> {
    if (this.#redisConnection !== undefined) await closeClient(this.#redisConnection);
  }

  /** The row kept under this key, if it was kept after `oldestKeptMs`. */
  async get(key: string, oldestKeptMs: number): Promise<string | undefined> {
    const [index, rows] = this.#keys;
    const replies = await this.#redis.multi().zscore(index, key).hget(rows, key).exec();
    const storedAtMs = replies?.[0]?.[1];
    const json = replies?.[1]?.[1];
    if (typeof json !== "string" || storedAtMs === null || storedAtMs === undefined) return undefined;
    return Number(storedAtMs) > oldestKeptMs ? json : undefined;
  }

  /**
   * Keeps a row and evicts past the limits; the rows and bytes kept after it, fleet-wide. `keptUntilMs`: a row its
   * request kept for less than the time to live is indexed as if kept that much earlier, so that it expires (for
   * lookups and the puts' sweep) at its own end, and a full cache evicts it before rows that are still live.
   */
  async put(
    key: string,
    json: string,
    storedAtMs: number,
    limits: AnswerRowLimits,
    keptUntilMs?: number,
  ): Promise<{ entries: number; bytes: number }> {
    const indexedAtMs = keptUntilMs === undefined ? storedAtMs : Math.min(storedAtMs, keptUntilMs - limits.ttlMs);
    const reply = await this.#redis.answerPut(
      ...this.#keys,
      key,
      json,
      indexedAtMs,
      storedAtMs - limits.ttlMs,
      limits.maxEntries,
      limits.maxBytes,
    );
    const [entries, bytes] = Array.isArray(reply) ? reply : [];
    return { entries: Number(entries ?? 0), bytes: Number(bytes ?? 0) };
  }

  /** The rows held and their bytes, in one round trip (asked by `/stats`, never by a request). */
  async count(): Promise<{ entries: number; bytes: number }> {
    const [index, , bytes] = this.#keys;
    const replies = await this.#redis.multi().zcard(index).get(bytes).exec();
    return { entries: Number(replies?.[0]?.[1] ?? 0), bytes: Number(replies?.[1]?.[1] ?? 0) };
  }

  /** Drops every row; how many there were. */
  async clear(): Promise<number> {
    return Number(await this.#redis.answerClear(...this.#keys));
  }
}
