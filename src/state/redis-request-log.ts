// The request log in Redis, shared by every gateway process on the same Redis and key prefix: a sorted set of
// ids by start time and a hash of rows. Filters run here over rows fetched newest first in batches. Redis being
// down loses log rows (the request log is a convenience, never a reason to fail or slow a request). The row and
// filter shapes match observability's RequestLogBackend (state/ does not import observability).
import { closeClient, createCommandClient, type RedisConnection } from "./redis-client.ts";

interface StoredRequestRow {
  readonly id: string;
  readonly startedAtMs: number;
  readonly models: readonly string[];
  readonly providers: readonly string[];
  readonly status: number;
  /** Absent on rows of earlier versions (which had no client names). */
  readonly client?: string | undefined;
  readonly json: string;
}

interface RequestRowFilter {
  readonly model?: string | undefined;
  readonly provider?: string | undefined;
  readonly status?: number | undefined;
  readonly client?: string | undefined;
  readonly sinceMs?: number | undefined;
  readonly limit: number;
}

/** Rows fetched per round trip while filtering. */
const BATCH = 200;
/** Rows written by one ZADD and one HSET. */
const ROWS_PER_COMMAND = 256;
/** ms a request-log command may take. */
const COMMAND_TIMEOUT_MS = 1_000;

export class RedisRequestLogBackend {
  readonly kind = "redis";
  readonly #redis: RedisConnection;
  readonly #indexKey: string;
  readonly #rowsKey: string;

  constructor(url: string, keyPrefix: string, isCluster = false) {
    this.#redis = createCommandClient(url, isCluster, COMMAND_TIMEOUT_MS);
    // Errors surface on the commands; without a listener ioredis would print every reconnection failure.
    this.#redis.on("error", () => {});
    // One hash tag for both keys: a Redis Cluster keeps them in one slot, so MULTI over both works there too.
    this.#indexKey = `${keyPrefix}{requests}`;
    this.#rowsKey = `${keyPrefix}{requests}:rows`;
  }

  /** Connects (the caller decides whether to wait). Never rejects. */
  async connect(): Promise<void> {
    try {
      await this.#redis.connect();
    } catch {
      // reconnects in the background
    }
  }

  async append(rows: readonly StoredRequestRow[]): Promise<void> {
    if (rows.length === 0) return;
    // One ZADD and one HSET per group of rows, not two commands per row: each ioredis command costs its own
    // objects, promise and encoding, which under load (thousands of rows per flush) was a visible share of a
    // request's CPU through Redis. Groups keep any one command (and Redis's time on it) bounded.
    const multi = this.#redis.multi();
    for (let start = 0; start < rows.length; start += ROWS_PER_COMMAND) {
      const scores: (string | number)[] = [];
      const fields: string[] = [];
      for (const row of rows.slice(start, start + ROWS_PER_COMMAND)) {
        scores.push(row.startedAtMs, row.id);
        fields.push(row.id, JSON.stringify(row));
      }
      multi.zadd(this.#indexKey, ...scores);
      multi.hset(this.#rowsKey, ...fields);
    }
    await multi.exec();
  }

  async query(filter: RequestRowFilter): Promise<string[]> {
    const found: string[] = [];
    const min = filter.sinceMs ?? "-inf";
    for (let offset = 0; found.length < filter.limit; offset += BATCH) {
      const ids = await this.#redis.zrevrangebyscore(this.#indexKey, "+inf", min, "LIMIT", offset, BATCH);
      if (ids.length === 0) break;
      const texts = await this.#redis.hmget(this.#rowsKey, ...ids);
      for (const text of texts) {
        if (text === null) continue;
        const row = JSON.parse(text) as StoredRequestRow;
        if (matches(row, filter)) found.push(row.json);
        if (found.length >= filter.limit) break;
      }
      if (ids.length < BATCH) break;
    }
    return found;
  }

  async get(id: string): Promise<string | undefined> {
    const text = await this.#redis.hget(this.#rowsKey, id);
    return text === null ? undefined : (JSON.parse(text) as StoredRequestRow).json;
  }

  async prune(maxEntries: number, oldestStartedAtMs: number): Promise<void> {
    const old = await this.#redis.zrangebyscore(this.#indexKey, "-inf", `(${oldestStartedAtMs}`);
    const count = await this.#redis.zcard(this.#indexKey);
    const excess = count - old.length - maxEntries;
    const surplus =
      excess > 0 ? await this.#redis.zrange(this.#indexKey, String(old.length), String(old.length + excess - 1)) : [];
    const ids: string[] = [...old, ...surplus];
    if (ids.length === 0) return;
    await this.#redis
      .multi()
      .zrem(this.#indexKey, ...ids)
      .hdel(this.#rowsKey, ...ids)
      .exec();
  }

  async close(): Promise<void> {
    await closeClient(this.#redis);
  }
}

function matches(row: StoredRequestRow, filter: RequestRowFilter): boolean {
  if (filter.sinceMs !== undefined && row.startedAtMs < filter.sinceMs) return false;
  if (filter.status !== undefined && row.status !== filter.status) return false;
  if (filter.model !== undefined && !row.models.includes(filter.model)) return false;
  if (filter.provider !== undefined && !row.providers.includes(filter.provider)) return false;
  if (filter.client !== undefined && row.client !== filter.client) return false;
  return true;
}
