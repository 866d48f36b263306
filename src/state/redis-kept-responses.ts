// Kept Responses API answers in Redis, shared by every gateway process on the same Redis and key prefix, so a
// `previous_response_id` answered by one process continues on another. Keys (one hash tag, so a Redis Cluster
// keeps them in one slot and the delete script and MULTI work there too):
//   {responses}        sorted set: response id, scored by when it was kept (ms)
//   {responses}:rows   hash: response id -> JSON
//   {responses}:meta   hash: response id -> {"bytes":N,"itemIds":[...]}
//   {responses}:items  hash: output item id -> response id
//   {responses}:bytes  string: total bytes of the rows
// Conversations (OpenAI's Conversations API) are rows of the same shape under `{conversations}`, bounded alike.
// Bounded by count, total bytes and age: every put evicts expired rows, then the oldest ones past the caps; a
// read ignores a row older than the age cap. The row and limit shapes match protocols' KeptResponseRows.
import type { Clock } from "../clock.ts";
import type { KeptResponseLimits, KeptResponseRow } from "./embedded-kept-responses.ts";
import { closeClient, createCommandClient, type RedisConnection } from "./redis-client.ts";

/** ms a command may take: a continuation waits for its history, so this is longer than the budget checks'. */
const COMMAND_TIMEOUT_MS = 1_000;
/** Oldest rows read per round trip while evicting. */
const EVICT_BATCH = 100;

/**
 * Deletes one row and what points at it, once: two processes evicting the same row must not subtract its bytes
 * twice. KEYS: index, rows, meta, items, bytes. ARGV: id. Returns 1 when the row was there.
 */
const DELETE_LUA = `
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
local meta = redis.call('HGET', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
if meta then
  local decoded = cjson.decode(meta)
  redis.call('DECRBY', KEYS[5], decoded.bytes)
  for _, item in ipairs(decoded.itemIds) do
    if redis.call('HGET', KEYS[4], item) == ARGV[1] then redis.call('HDEL', KEYS[4], item) end
  end
end
return 1
`;

/**
 * Replaces a row only if it is still the JSON the caller read (compare and set), for rows without items (a
 * conversation): two gateway processes adding to one conversation at once must not each write back their own copy.
 * KEYS: index, rows, meta, items, bytes. ARGV: id, expected JSON, new JSON, now (ms), new bytes, new meta.
 * Returns 1 when written, 0 when the row changed (or is gone) since it was read.
 */
const PUT_IF_UNCHANGED_LUA = `
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
local meta = redis.call('HGET', KEYS[3], ARGV[1])
if meta then redis.call('DECRBY', KEYS[5], cjson.decode(meta).bytes) end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[6])
redis.call('INCRBY', KEYS[5], ARGV[5])
return 1
`;

export class RedisKeptResponses {
  readonly kind = "redis";
  readonly #redis: RedisConnection;
  readonly #limits: KeptResponseLimits;
  readonly #clock: Clock;
  readonly #keys: readonly [index: string, rows: string, meta: string, items: string, bytes: string];

  /** `tag`: the keys' hash tag, `responses` or `conversations` (each kind of row in keys of its own). */
  constructor(
    url: string,
    keyPrefix: string,
    isCluster: boolean,
    limits: KeptResponseLimits,
    clock: Clock,
    tag: "responses" | "conversations" = "responses",
  ) {
    this.#redis = createCommandClient(url, isCluster, COMMAND_TIMEOUT_MS);
    // Errors surface on the commands; without a listener ioredis would print every reconnection failure.
    this.#redis.on("error", () => {});
    this.#limits = limits;
    this.#clock = clock;
    const base = `${keyPrefix}{${tag}}`;
    this.#keys = [base, `${base}:rows`, `${base}:meta`, `${base}:items`, `${base}:bytes`];
  }

  /** Connects (the caller decides whether to wait). Never rejects. */
  async connect(): Promise<void> {
    try {
      await this.#redis.connect();
    } catch {
      // reconnects in the background; commands fail at once until then
    }
  }

  async put(row: KeptResponseRow): Promise<void> {
    const bytes = Buffer.byteLength(row.json);
    await this.#deleteRow(row.id);
    if (bytes <= this.#limits.maxBytes && this.#limits.maxEntries > 0) {
      const [index, rows, meta, items, total] = this.#keys;
      const multi = this.#redis
        .multi()
        .zadd(index, this.#clock.now(), row.id)
        .hset(rows, row.id, row.json)
        .hset(meta, row.id, JSON.stringify({ bytes, itemIds: row.itemIds }))
        .incrby(total, bytes);
      for (const itemId of row.itemIds) multi.hset(items, itemId, row.id);
      await multi.exec();
    }
    await this.#evict();
  }

  /**
   * Writes `row` (which has no items) only if the kept row is still `expectedJson`; false when another writer
   * changed or deleted it meanwhile (the caller reads it again). Then evicts, as `put` does.
   */
  async putIfUnchanged(row: KeptResponseRow, expectedJson: string): Promise<boolean> {
    const bytes = Buffer.byteLength(row.json);
    if (row.itemIds.length > 0 || bytes > this.#limits.maxBytes) {
      throw new Error("putIfUnchanged takes rows without items, within max_bytes");
    }
    const meta = JSON.stringify({ bytes, itemIds: [] });
    const written = await this.#redis.eval(
      PUT_IF_UNCHANGED_LUA,
      this.#keys.length,
      ...this.#keys,
      row.id,
      expectedJson,
      row.json,
      String(this.#clock.now()),
      String(bytes),
      meta,
    );
    if (written !== 1) return false;
    await this.#evict();
    return true;
  }

  async get(id: string): Promise<string | undefined> {
    const [index, rows] = this.#keys;
    const replies = await this.#redis.multi().zscore(index, id).hget(rows, id).exec();
    const storedAtMs = replies?.[0]?.[1];
    const json = replies?.[1]?.[1];
    if (typeof json !== "string" || storedAtMs === null || storedAtMs === undefined) return undefined;
    return Number(storedAtMs) > this.#oldestKeptMs() ? json : undefined;
  }

  async getByItem(itemId: string): Promise<string | undefined> {
    const responseId = await this.#redis.hget(this.#keys[3], itemId);
    return responseId === null ? undefined : this.get(responseId);
  }

  async delete(id: string): Promise<boolean> {
    const isKept = (await this.get(id)) !== undefined;
    await this.#deleteRow(id);
    return isKept;
  }

  async close(): Promise<void> {
    await closeClient(this.#redis);
  }

  #oldestKeptMs(): number {
    return this.#clock.now() - this.#limits.maxAgeMs;
  }

  async #deleteRow(id: string): Promise<boolean> {
    return (await this.#redis.eval(DELETE_LUA, this.#keys.length, ...this.#keys, id)) === 1;
  }

  async #evict(): Promise<void> {
    const [index, , , , total] = this.#keys;
    const expired = await this.#redis.zrangebyscore(index, "-inf", this.#oldestKeptMs());
    for (const id of expired) await this.#deleteRow(id);
    for (;;) {
      const [count, bytes] = await Promise.all([this.#redis.zcard(index), this.#redis.get(total)]);
      const excess = count - this.#limits.maxEntries;
      const isOverBytes = Number(bytes ?? 0) > this.#limits.maxBytes;
      if (excess <= 0 && !isOverBytes) return;
      const oldest = await this.#redis.zrange(index, "0", String(Math.max(excess, 1) - 1));
      if (oldest.length === 0) return;
      for (const id of oldest.slice(0, EVICT_BATCH)) await this.#deleteRow(id);
    }
  }
}
