// Kept Responses API answers in Redis, shared by every gateway process on the same Redis and key prefix, so a
// `previous_response_id` answered by one process continues on another. Keys (one hash tag, so a Redis Cluster
// keeps them in one slot and the delete script and MULTI work there too):
//   {responses}        sorted set: response id, scored by when it was kept (ms)
//   {responses}:rows   hash: response id -> JSON
//   {responses}:meta   hash: response id -> {"bytes":N,"itemIds":[...]}
//   {responses}:items  hash: output item id -> response id
//   {responses}:bytes  string: total bytes of the rows
//   {responses}:owners       hash: owner -> rows it holds (owner: the named client that wrote the row, '' unnamed)
//   {responses}:owner-bytes  hash: owner -> bytes it holds
//   {responses}:by-owner     sorted set, by lex: "owner\0<ms, 15 digits>\0id", an owner's rows oldest first
//   {responses}:events:<id>  list: a streamed background response's events, appended (the one key a script names
//                            without declaring it: built from the tag's key, so in the same Cluster slot)
// Conversations (OpenAI's Conversations API) are rows of the same shape under `{conversations}`, bounded alike.
// Bounded by count, total bytes and age: every put evicts expired rows, then, past a cap, the oldest row of the
// owner holding the most of that cap (rows or bytes; ties: the owner with the older row), so that one client's flood
// evicts its own rows and not another's (protocols/responses/owner-shares.ts says why); with one owner that is the
// oldest row, as before. Rows written before owners were tallied (no `member` in their meta) are evicted only when
// no tallied owner is left, oldest first, or when they expire. Every write and eviction is one Lua script over keys
// of one hash tag (atomic, and Redis Cluster-safe: every key is declared). A read ignores a row older than the age cap. The row and limit shapes match protocols' KeptResponseRows.
import type { Clock } from "../clock.ts";
import type { ConditionalWrite, KeptResponseLimits, KeptResponseRow } from "./embedded-kept-responses.ts";
import { closeClient, createCommandClient, type RedisConnection } from "./redis-client.ts";

/** ms a command may take: a continuation waits for its history, so this is longer than the budget checks'. */
const COMMAND_TIMEOUT_MS = 1_000;
/** Rows one eviction script removes at most before it answers (the caller runs it again): a short script. */
const EVICT_BATCH = 100;
/** Eviction scripts one write runs at most (a million rows); the next write goes on. */
const MAX_EVICT_ROUNDS = 10_000;
/**
 * ms a compare and set whose reply was lost waits, at most, for Redis to answer the read that says whether it
 * landed (a reconnection: 100 ms, then up to the 1 s connect timeout), reads UNKNOWN_OUTCOME_RETRY_MS apart.
 */
const UNKNOWN_OUTCOME_WAIT_MS = 3_000;
const UNKNOWN_OUTCOME_RETRY_MS = 50;
/** ms between two reads of Redis's clock (#deadlineOnRedisClock): two clocks drift apart by far less meanwhile. */
const CLOCK_MEASURE_INTERVAL_MS = 60_000;

/** Redis's clock minus this process's (ms), how far off that may be, and when it was measured (this process's). */
interface ClockOffset {
  readonly offsetMs: number;
  readonly uncertaintyMs: number;
  readonly measuredAtMs: number;
}

/** Redis's clock, [seconds, microseconds], from the node of KEYS[1]'s slot (a Cluster's nodes each have their own). */
const TIME_LUA = "return redis.call('TIME')";

/**
 * Lua shared by the scripts. KEYS: index, rows, meta, items, bytes, owners, owner-bytes, by-owner.
 * `remove(id)`: deletes one row and what points at it, once (two processes evicting the same row must not subtract
 * its bytes twice); 1 when the row was there. `add(...)`: writes a row (already removed) and its owner's tallies.
 */
const ROW_FUNCTIONS = `
local function remove(id, isReplaced)
  if redis.call('ZREM', KEYS[1], id) == 0 then return 0 end
  redis.call('HDEL', KEYS[2], id)
  if not isReplaced then redis.call('DEL', KEYS[1] .. ':events:' .. id) end
  local meta = redis.call('HGET', KEYS[3], id)
  redis.call('HDEL', KEYS[3], id)
  if meta then
    local decoded = cjson.decode(meta)
    redis.call('DECRBY', KEYS[5], decoded.bytes)
    for _, item in ipairs(decoded.itemIds) do
      if redis.call('HGET', KEYS[4], item) == id then redis.call('HDEL', KEYS[4], item) end
    end
    if decoded.member then
      redis.call('ZREM', KEYS[8], decoded.member)
      if redis.call('HINCRBY', KEYS[6], decoded.owner, -1) <= 0 then
        redis.call('HDEL', KEYS[6], decoded.owner)
        redis.call('HDEL', KEYS[7], decoded.owner)
      else
        redis.call('HINCRBY', KEYS[7], decoded.owner, -decoded.bytes)
      end
    end
  end
  return 1
end
-- The bytes of a row's appended events (the row's own meta counts them), carried over when the row is replaced.
local function eventBytes(id)
  local meta = redis.call('HGET', KEYS[3], id)
  if not meta then return 0 end
  return cjson.decode(meta).eventBytes or 0
end
-- A run's write landing past its deadline (ms on Redis's clock, '' none) is refused: see #deadlineOnRedisClock.
local function isLate(deadline)
  if deadline == '' then return false end
  -- Redis before 5 replicated scripts verbatim, where a write after TIME is refused; a no-op since.
  if redis.replicate_commands then redis.replicate_commands() end
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) > tonumber(deadline)
end
local function add(id, json, now, bytes, meta, owner, member)
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('HSET', KEYS[2], id, json)
  redis.call('HSET', KEYS[3], id, meta)
  redis.call('INCRBY', KEYS[5], bytes)
  redis.call('ZADD', KEYS[8], 0, member)
  redis.call('HINCRBY', KEYS[6], owner, 1)
  redis.call('HINCRBY', KEYS[7], owner, bytes)
end
`;

/**
 * ARGV: id, then (optional) the oldest score still kept (ms). Returns 1 when the row was there (and, with the score,
 * not expired): one step, so a write landing between a read and the delete cannot make the answer wrong.
 */
const DELETE_LUA = `${ROW_FUNCTIONS}
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local removed = remove(ARGV[1])
if removed == 1 and ARGV[2] and tonumber(score) <= tonumber(ARGV[2]) then return 0 end
return removed
`;

/** Replaces a row (its appended events go). ARGV: id, JSON, now (ms), bytes, meta, owner, member, then item ids. */
const PUT_LUA = `${ROW_FUNCTIONS}
remove(ARGV[1])
add(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
for i = 8, #ARGV do redis.call('HSET', KEYS[4], ARGV[i], ARGV[1]) end
return 1
`;

/**
 * Replaces a row only if it is still the JSON the caller read (compare and set): two gateway processes adding to one
 * conversation at once must not each write back their own copy, and a background response's heartbeat must not
 * write over a cancel or bring back a DELETE made on another replica since its last write. With events (a background
 * run's final write), appends them first, as APPEND_EVENTS_LUA does, in the same step: a cancel that landed before
 * refuses the events too, so the list never ends with an answer the row does not have.
 * ARGV: id, expected JSON, new JSON, now (ms), new bytes, new meta, owner, member, the deadline (ms on Redis's clock,
 * '': none), the count of events the caller knows kept (-1: no events), the number N of events, the N events, then
 * the row's item ids.
 * Returns 1 when written, 0 when the row changed (or is gone) since it was read, the events cannot be appended, or
 * the deadline is past.
 */
const PUT_IF_UNCHANGED_LUA = `${ROW_FUNCTIONS}
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
if isLate(ARGV[9]) then return 0 end
local eventCount = tonumber(ARGV[11])
local appended = 0
if tonumber(ARGV[10]) >= 0 and eventCount > 0 then
  local list = KEYS[1] .. ':events:' .. ARGV[1]
  local landed = redis.call('LLEN', list) - tonumber(ARGV[10])
  if landed < 0 or landed > eventCount then return 0 end
  for i = 12 + landed, 11 + eventCount do
    redis.call('RPUSH', list, ARGV[i])
    appended = appended + #ARGV[i]
  end
end
local carried = eventBytes(ARGV[1]) + appended
remove(ARGV[1], true)
local meta = cjson.decode(ARGV[6])
meta.bytes = meta.bytes + carried
meta.eventBytes = carried
add(ARGV[1], ARGV[3], ARGV[4], tostring(meta.bytes), cjson.encode(meta), ARGV[7], ARGV[8])
for i = 12 + eventCount, #ARGV do redis.call('HSET', KEYS[4], ARGV[i], ARGV[1]) end
return 1
`;

/**
 * Appends a background response's stream events (append-only: a heartbeat sends only the new ones), counted in its
 * row's bytes and its owner's. ARGV: id, the count the caller knows kept, the deadline (as PUT_IF_UNCHANGED_LUA's),
 * then the events from there on. Only the run
 * appends, so a list longer than that by at most the events sent holds the first of them already: an append that
 * landed after its reply was lost (a command timeout), sent again by the next heartbeat with the events since; only
 * the rest is appended (refusing it made the run take the retry for a cancel and end). Returns 1 when the list holds
 * every event sent, 0 when the row is gone, the list cannot have come from these events, or the deadline is past.
 */
const APPEND_EVENTS_LUA = `${ROW_FUNCTIONS}
local meta = redis.call('HGET', KEYS[3], ARGV[1])
if not meta then return 0 end
local list = KEYS[1] .. ':events:' .. ARGV[1]
local kept = tonumber(ARGV[2])
if isLate(ARGV[3]) then return 0 end
local landed = redis.call('LLEN', list) - kept
if landed < 0 or landed > #ARGV - 3 then return 0 end
local bytes = 0
for i = 4 + landed, #ARGV do
  redis.call('RPUSH', list, ARGV[i])
  bytes = bytes + #ARGV[i]
end
local decoded = cjson.decode(meta)
decoded.bytes = decoded.bytes + bytes
decoded.eventBytes = (decoded.eventBytes or 0) + bytes
redis.call('HSET', KEYS[3], ARGV[1], cjson.encode(decoded))
redis.call('INCRBY', KEYS[5], bytes)
if decoded.member then redis.call('HINCRBY', KEYS[7], decoded.owner, bytes) end
return 1
`;

/** Deletes a row only if it is still the JSON the caller read. ARGV: id, expected JSON. Returns 1 when deleted. */
const DELETE_IF_UNCHANGED_LUA = `${ROW_FUNCTIONS}
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
return remove(ARGV[1])
`;

/**
 * Evicts expired rows, then rows past the caps: the oldest of the owner holding the most (see the file's header).
 * ARGV: oldest score kept (ms), max entries, max bytes, most rows removed. Returns 1 when more may be left to evict.
 */
const EVICT_LUA = `${ROW_FUNCTIONS}
local batch = tonumber(ARGV[4])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, batch)
for _, id in ipairs(expired) do remove(id) end
if #expired >= batch then return 1 end
local maxEntries = tonumber(ARGV[2])
local maxBytes = tonumber(ARGV[3])
for _ = 1, batch do
  local tallies
  if redis.call('ZCARD', KEYS[1]) > maxEntries then
    tallies = KEYS[6]
  elseif tonumber(redis.call('GET', KEYS[5]) or '0') > maxBytes then
    tallies = KEYS[7]
  else
    return 0
  end
  local held = redis.call('HGETALL', tallies)
  local victim, member, victimOwner, most, mostOldest
  for i = 1, #held, 2 do
    local owner, amount = held[i], tonumber(held[i + 1])
    local first = redis.call('ZRANGEBYLEX', KEYS[8], '[' .. owner .. '\\0', '(' .. owner .. '\\1', 'LIMIT', 0, 1)[1]
    if first then
      local oldest = string.sub(first, #owner + 2, #owner + 16)
      if most == nil or amount > most or (amount == most and oldest < mostOldest) then
        most, mostOldest, member, victimOwner = amount, oldest, first, owner
        victim = string.sub(first, #owner + 18)
      end
    end
  end
  if victim == nil then victim = redis.call('ZRANGE', KEYS[1], 0, 0)[1] end
  if victim == nil then return 0 end
  if remove(victim) == 0 and member then
    -- A member whose row is gone (keys changed by hand, or evicted by Redis' maxmemory): dropped, so the loop moves on.
    redis.call('ZREM', KEYS[8], member)
    if redis.call('HINCRBY', KEYS[6], victimOwner, -1) <= 0 then
      redis.call('HDEL', KEYS[6], victimOwner)
      redis.call('HDEL', KEYS[7], victimOwner)
    end
  end
end
return 1
`;

/** Redis answered, with an error (ioredis's ReplyError): unlike a lost reply, the command's outcome is known. */
function isErrorReply(error: unknown): boolean {
  return error instanceof Error && error.name === "ReplyError";
}

/** The owner tallied for a row written by an unnamed key (a client name is never empty). */
const UNNAMED_OWNER = "";

export class RedisKeptResponses {
  readonly kind = "redis";
  readonly #redis: RedisConnection;
  readonly #limits: KeptResponseLimits;
  readonly #clock: Clock;
  #clockOffset: ClockOffset | undefined;
  readonly #keys: readonly [
    index: string,
    rows: string,
    meta: string,
    items: string,
    bytes: string,
    owners: string,
    ownerBytes: string,
    byOwner: string,
  ];

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
    this.#keys = [
      base,
      `${base}:rows`,
      `${base}:meta`,
      `${base}:items`,
      `${base}:bytes`,
      `${base}:owners`,
      `${base}:owner-bytes`,
      `${base}:by-owner`,
    ];
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
    if (bytes <= this.#limits.maxBytes && this.#limits.maxEntries > 0) {
      const written = this.#written(row, bytes);
      await this.#redis.eval(PUT_LUA, this.#keys.length, ...this.#keys, row.id, row.json, ...written, ...row.itemIds);
    } else {
      await this.#deleteRow(row.id);
    }
    await this.#evict();
  }

  /**
   * Writes `row` only if the kept row is still `expectedJson`; false when another writer changed or deleted it
   * meanwhile (the caller reads it again). A row over the bounds is not kept, as `put` does: the unchanged row is
   * deleted and the answer is false. Then evicts, as `put` does.
   *
   * A script whose reply is lost (the connection dropped, or the command timed out, after it was sent: it may have
   * run) is not taken for a refusal: the row is read again, once Redis answers (UNKNOWN_OUTCOME_WAIT_MS at most), and
   * the answer decided from it: `row` is kept -> written; `expectedJson` still -> it did not land, sent again; another
   * row, or none -> false. A lost reply taken for a failure made a background run's next heartbeat compare against
   * its previous state and end the run as if it had been cancelled, and a final save that had landed was reported as
   * not kept (the answer did not join its conversation).
   */
  async putIfUnchanged(row: KeptResponseRow, expectedJson: string, options: ConditionalWrite = {}): Promise<boolean> {
    const bytes = Buffer.byteLength(row.json);
    if (bytes > this.#limits.maxBytes || this.#limits.maxEntries <= 0) {
      if (this.#isLate(options)) return false;
      await this.#redis.eval(DELETE_IF_UNCHANGED_LUA, this.#keys.length, ...this.#keys, row.id, expectedJson);
      return false;
    }
    const deadlineMs = performance.now() + UNKNOWN_OUTCOME_WAIT_MS;
    let lostReply: unknown;
    for (;;) {
      if (this.#isLate(options)) return false;
      let written: unknown;
      try {
        written = await this.#compareAndSet(row, bytes, expectedJson, options);
      } catch (error) {
        // Redis answered with an error: the outcome is known (nothing to read again).
        if (isErrorReply(error)) throw error;
        lostReply = error;
        const kept = await this.#rowOnceAnswered(row.id, deadlineMs, error);
        if (kept === row.json) break;
        if (kept !== expectedJson) return false;
        if (performance.now() >= deadlineMs) throw error;
        continue;
      }
      if (written === 1) break;
      // Refused after a lost reply: that attempt may have run since (a timed-out command Redis ran late), and then
      // this one found the row changed by it.
      if (lostReply === undefined || (await this.#rowOnceAnswered(row.id, deadlineMs, lostReply)) !== row.json) {
        return false;
      }
      break;
    }
    // The row is written whatever the eviction does: the next write evicts again. A failure here reported the write
    // as failed (a background run then took its next refused heartbeat for a cancel).
    await this.#evict().catch(() => {});
    return true;
  }

  /**
   * A run's late write (background.ts BACKGROUND_LATE_WRITE_MS), refused by this process's clock just before the
   * script is sent, and by Redis's in the script (#deadlineOnRedisClock): one held on the way is refused there.
   */
  #isLate(options: ConditionalWrite): boolean {
    return options.notAfterMs !== undefined && this.#clock.now() > options.notAfterMs;
  }

  /**
   * A run's deadline (`notAfterMs`, this process's clock) on Redis's clock, for the scripts to check as they run
   * ('': none, or Redis's clock not known): a script checked in time here but held on the way (a slow network, a
   * Redis paused or busy: it lands whenever Redis reads it, even after the command timed out here) no longer lands
   * after a reader elsewhere showed the run failed. Redis's clock is read (TIME, through a script on the rows' slot:
   * the node that runs the writes) once every CLOCK_MEASURE_INTERVAL_MS; its distance to this process's clock is
   * added to the deadline, with the read's half round trip (its uncertainty), so that neither clock's setting
   * matters, only that they run at the same rate.
   */
  async #deadlineOnRedisClock(notAfterMs: number | undefined): Promise<string> {
    if (notAfterMs === undefined) return "";
    const offset = await this.#redisClockOffset();
    return offset === undefined ? "" : String(Math.ceil(notAfterMs + offset.offsetMs + offset.uncertaintyMs));
  }

  async #redisClockOffset(): Promise<ClockOffset | undefined> {
    const known = this.#clockOffset;
    if (known !== undefined && Math.abs(this.#clock.now() - known.measuredAtMs) < CLOCK_MEASURE_INTERVAL_MS) {
      return known;
    }
    const sentMs = performance.now();
    let time: unknown;
    try {
      time = await this.#redis.eval(TIME_LUA, 1, this.#keys[0]);
    } catch {
      // Not known now: the script goes without it (this process's check stands), measured again next time.
      return known;
    }
    const halfTripMs = (performance.now() - sentMs) / 2;
    if (!Array.isArray(time)) return known;
    const redisMs = Number(time[0]) * 1_000 + Number(time[1]) / 1_000;
    if (!Number.isFinite(redisMs)) return known;
    const nowMs = this.#clock.now();
    this.#clockOffset = { offsetMs: redisMs - (nowMs - halfTripMs), uncertaintyMs: halfTripMs, measuredAtMs: nowMs };
    return this.#clockOffset;
  }

  async #compareAndSet(
    row: KeptResponseRow,
    bytes: number,
    expectedJson: string,
    options: ConditionalWrite,
  ): Promise<unknown> {
    const { events } = options;
    return this.#redis.eval(
      PUT_IF_UNCHANGED_LUA,
      this.#keys.length,
      ...this.#keys,
      row.id,
      expectedJson,
      row.json,
      ...this.#written(row, bytes),
      await this.#deadlineOnRedisClock(options.notAfterMs),
      String(events?.keptCount ?? -1),
      String(events?.events.length ?? 0),
      ...(events?.events ?? []),
      ...row.itemIds,
    );
  }

  /**
   * The row's JSON as kept (undefined: none), read again and again UNKNOWN_OUTCOME_RETRY_MS apart until Redis
   * answers (the client has no offline queue: a read while it reconnects fails at once); past `deadlineMs`,
   * `lostReply` is thrown (the outcome stays unknown).
   */
  async #rowOnceAnswered(id: string, deadlineMs: number, lostReply: unknown): Promise<string | undefined> {
    for (;;) {
      try {
        return (await this.#redis.hget(this.#keys[1], id)) ?? undefined;
      } catch (error) {
        if (isErrorReply(error)) throw error;
        if (performance.now() >= deadlineMs) throw lostReply;
      }
      await new Promise((resolve) => setTimeout(resolve, UNKNOWN_OUTCOME_RETRY_MS));
    }
  }

  /** The scripts' arguments after the JSON: now (ms), bytes, meta, owner, by-owner member. */
  #written(row: KeptResponseRow, bytes: number): [string, string, string, string, string] {
    const now = this.#clock.now();
    const owner = row.owner ?? UNNAMED_OWNER;
    // Sorted by lex within the owner: the 15-digit time orders its rows oldest first.
    const member = `${owner}\u0000${String(Math.max(0, Math.floor(now))).padStart(15, "0")}\u0000${row.id}`;
    const meta = JSON.stringify({ bytes, itemIds: row.itemIds, owner, member });
    return [String(now), String(bytes), meta, owner, member];
  }

  /** See APPEND_EVENTS_LUA: false when the row is gone or the list cannot have come from these events. Then evicts. */
  async appendEvents(id: string, keptCount: number, events: readonly string[], notAfterMs?: number): Promise<boolean> {
    if (events.length === 0) return true;
    if (notAfterMs !== undefined && this.#clock.now() > notAfterMs) return false;
    const deadline = await this.#deadlineOnRedisClock(notAfterMs);
    const appended = await this.#redis.eval(
      APPEND_EVENTS_LUA,
      this.#keys.length,
      ...this.#keys,
      id,
      String(keptCount),
      deadline,
      ...events,
    );
    await this.#evict();
    return appended === 1;
  }

  /** A row's appended events from index `from` on (none: an empty list). */
  async getEvents(id: string, from: number): Promise<string[]> {
    return this.#redis.lrange(`${this.#keys[0]}:events:${id}`, from, -1);
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

  /** True when a row that had not expired was deleted (decided in the script: no read before it). */
  async delete(id: string): Promise<boolean> {
    const deleted = await this.#redis.eval(
      DELETE_LUA,
      this.#keys.length,
      ...this.#keys,
      id,
      String(this.#oldestKeptMs()),
    );
    return deleted === 1;
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
    const limits = [String(this.#oldestKeptMs()), String(this.#limits.maxEntries), String(this.#limits.maxBytes)];
    // More to evict: another short script, so other commands are served in between (bounded, whatever the data).
    for (let round = 0; round < MAX_EVICT_ROUNDS; round++) {
      const more = await this.#redis.eval(EVICT_LUA, this.#keys.length, ...this.#keys, ...limits, String(EVICT_BATCH));
      if (more !== 1) return;
    }
  }
}
