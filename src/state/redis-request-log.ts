// The request log in Redis, shared by every gateway process on the same Redis and key prefix: a sorted set of
// row keys by start time and a hash of rows. Filters run here over rows fetched newest first in batches. Redis being
// down loses log rows (the request log is a convenience, never a reason to fail or slow a request). The row and
// filter shapes match observability's RequestLogBackend (state/ does not import observability).
//
// A row's key is its request id, and for a named client's request the id and the client's name: ids are the
// clients' own choice (`x-request-id`), and keyed by id alone a second client's request with the same id replaced
// the first one's row, so its owner's lookup by id found nothing. A third hash points each id at the key of the
// last row written with it, for the lookups that may see every client's records (an unnamed key).
import { closeClient, connectWithin, createCommandClient, type RedisConnection } from "./redis-client.ts";
import { type ScriptCommand, withScripts } from "./redis-scripts.ts";

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
  readonly #redis: RedisConnection & Record<"dropPointers", ScriptCommand>;
  readonly #indexKey: string;
  readonly #rowsKey: string;
  /** Hash: request id -> the row key of the last row written with that id. */
  readonly #latestKey: string;

  constructor(url: string, keyPrefix: string, isCluster = false) {
    this.#redis = withScripts(createCommandClient(url, isCluster, COMMAND_TIMEOUT_MS), {
      dropPointers: { lua: DROP_POINTERS_LUA, numberOfKeys: 1 },
    });
    // Errors surface on the commands; without a listener ioredis would print every reconnection failure.
    this.#redis.on("error", () => {});
    // One hash tag for the three keys: a Redis Cluster keeps them in one slot, so MULTI over them works there too.
    this.#indexKey = `${keyPrefix}{requests}`;
    this.#rowsKey = `${keyPrefix}{requests}:rows`;
    this.#latestKey = `${keyPrefix}{requests}:latest`;
  }

  /** Connects (the caller decides whether to wait). Never rejects. */
  async connect(): Promise<void> {
    try {
      await connectWithin(this.#redis);
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
      const latest: string[] = [];
      for (const row of rows.slice(start, start + ROWS_PER_COMMAND)) {
        const key = rowKey(row.id, row.client);
        scores.push(row.startedAtMs, key);
        fields.push(key, JSON.stringify(row));
        latest.push(row.id, key);
      }
      multi.zadd(this.#indexKey, ...scores);
      multi.hset(this.#rowsKey, ...fields);
      multi.hset(this.#latestKey, ...latest);
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

  /** The last row written with the id; with `client`, that client's own (see the header). */
  async get(id: string, client?: string): Promise<string | undefined> {
    if (client !== undefined) {
      // A row of an earlier version is keyed by its id alone, whoever's it is: the client's own only if it says so.
      const [own, legacy] = await this.#redis.hmget(this.#rowsKey, rowKey(id, client), id);
      const row = parsedRow(own ?? null) ?? parsedRow(legacy ?? null);
      return row?.client === client ? row.json : undefined;
    }
    const key = (await this.#redis.hget(this.#latestKey, id)) ?? id;
    const [text, legacy] = await this.#redis.hmget(this.#rowsKey, key, id);
    return (parsedRow(text ?? null) ?? parsedRow(legacy ?? null))?.json;
  }

  async prune(maxEntries: number, oldestStartedAtMs: number): Promise<void> {
    const old = await this.#redis.zrangebyscore(this.#indexKey, "-inf", `(${oldestStartedAtMs}`);
    const count = await this.#redis.zcard(this.#indexKey);
    const excess = count - old.length - maxEntries;
    const surplus =
      excess > 0 ? await this.#redis.zrange(this.#indexKey, String(old.length), String(old.length + excess - 1)) : [];
    const keys: string[] = [...old, ...surplus];
    if (keys.length === 0) return;
    await this.#redis
      .multi()
      .zrem(this.#indexKey, ...keys)
      .hdel(this.#rowsKey, ...keys)
      .exec();
    // The pointers to the rows just dropped, unless a later row with the same id took them over meanwhile (checked
    // and deleted in one step: another replica may be writing that row right now).
    await this.#redis.dropPointers(this.#latestKey, ...keys.flatMap((key) => [idOfRowKey(key), key]));
  }

  async close(): Promise<void> {
    await closeClient(this.#redis);
  }
}

/** Between a request id and a client's name in a row key: neither may hold it (both are printable tokens). */
const ROW_KEY_SEPARATOR = "\n";

/** A row's field in the rows hash: the id, and for a named client's request, its name too. */
function rowKey(id: string, client: string | undefined): string {
  return client === undefined ? id : `${id}${ROW_KEY_SEPARATOR}${client}`;
}

function idOfRowKey(key: string): string {
  const end = key.indexOf(ROW_KEY_SEPARATOR);
  return end === -1 ? key : key.slice(0, end);
}

function parsedRow(text: string | null): StoredRequestRow | undefined {
  return text === null ? undefined : (JSON.parse(text) as StoredRequestRow);
}

/** KEYS[1]: the pointer hash. ARGV: pairs of (id, row key dropped): the id's pointer goes if it names that row. */
const DROP_POINTERS_LUA = `
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return 0`;

function matches(row: StoredRequestRow, filter: RequestRowFilter): boolean {
  if (filter.sinceMs !== undefined && row.startedAtMs < filter.sinceMs) return false;
  if (filter.status !== undefined && row.status !== filter.status) return false;
  if (filter.model !== undefined && !row.models.includes(filter.model)) return false;
  if (filter.provider !== undefined && !row.providers.includes(filter.provider)) return false;
  if (filter.client !== undefined && row.client !== filter.client) return false;
  return true;
}
