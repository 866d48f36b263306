// The Lua scripts of the kept Responses API answers in Redis (redis-kept-responses.ts: the keys they name, and
// why each write is one script). Every script declares its keys (one hash tag: a Redis Cluster keeps them in one
// slot) but the events list, built from the tag's key.
import type { RedisConnection } from "./redis-client.ts";
import { withScripts } from "./redis-scripts.ts";

/** The scripts' keys (index, rows, meta, items, bytes, owners, owner-bytes, by-owner): every call names all eight. */
const KEY_COUNT = 8;

/** A script as a command: its keys, then its ARGV. */
type KeptScript = (...keysAndArguments: string[]) => Promise<unknown>;

/** The scripts below as commands of the connection (`withKeptScripts`). */
export interface KeptScriptCommands {
  keptTime: KeptScript;
  keptDelete: KeptScript;
  keptPut: KeptScript;
  keptPutIfUnchanged: KeptScript;
  keptAppendEvents: KeptScript;
  keptDeleteIfUnchanged: KeptScript;
  keptEvict: KeptScript;
}

/**
 * The scripts defined on `redis` (ioredis `defineCommand`): sent by digest (EVALSHA), their text (PUT_LUA is ~3.4 KB)
 * only on a connection's first call and after Redis answers NOSCRIPT (a SCRIPT FLUSH, a restart, a failover to a
 * replica that never ran it), then sent again as EVAL. Every call sent the whole text as EVAL before 2026-12-07. The
 * key count is part of the definition, so a call's first argument is a key: ioredis's auto-pipelining groups a
 * Cluster's commands by their first argument's slot, and a script whose first argument was its key count was grouped
 * by the slot of "8" (redis-client.ts keeps the budgets' scripts out of auto-pipelining for that reason).
 */
export function withKeptScripts(redis: RedisConnection): RedisConnection & KeptScriptCommands {
  return withScripts(redis, {
    keptTime: { lua: TIME_LUA, numberOfKeys: 1 },
    keptDelete: { lua: DELETE_LUA, numberOfKeys: KEY_COUNT },
    keptPut: { lua: PUT_LUA, numberOfKeys: KEY_COUNT },
    keptPutIfUnchanged: { lua: PUT_IF_UNCHANGED_LUA, numberOfKeys: KEY_COUNT },
    keptAppendEvents: { lua: APPEND_EVENTS_LUA, numberOfKeys: KEY_COUNT },
    keptDeleteIfUnchanged: { lua: DELETE_IF_UNCHANGED_LUA, numberOfKeys: KEY_COUNT },
    keptEvict: { lua: EVICT_LUA, numberOfKeys: KEY_COUNT },
  });
}

/** Redis's clock, [seconds, microseconds], from the node of KEYS[1]'s slot (a Cluster's nodes each have their own). */
export const TIME_LUA = "return redis.call('TIME')";

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
-- A run's write landing past its deadline (ms on Redis's clock, '' none) is refused (redis-kept-responses.ts
-- #deadlineOnRedisClock).
local function isLate(deadline)
  if deadline == '' then return false end
  -- Redis before 5 replicated scripts verbatim, where a write after TIME is refused; a no-op since.
  if redis.replicate_commands then redis.replicate_commands() end
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) > tonumber(deadline)
end
-- A row a continuation reads its history from, kept as if written now (a new score and a new place in its owner's
-- order), unless gone or expired (score at or below oldest). Never older than it is (as ZADD GT, which Redis before
-- 6.2 lacks): a writer whose time is behind (another process's clock, a write held on the way) must not make a row
-- that newer writers read expire or be evicted before them.
local function touch(id, now, oldest)
  local score = redis.call('ZSCORE', KEYS[1], id)
  if not score or tonumber(score) <= tonumber(oldest) then return 1 end
  if tonumber(score) >= tonumber(now) then return 0 end
  redis.call('ZADD', KEYS[1], now, id)
  local meta = redis.call('HGET', KEYS[3], id)
  if not meta then return 0 end
  local decoded = cjson.decode(meta)
  if not decoded.member then return 0 end
  redis.call('ZREM', KEYS[8], decoded.member)
  decoded.member = decoded.owner .. '\0' .. string.format('%015d', math.floor(tonumber(now))) .. '\0' .. id
  redis.call('ZADD', KEYS[8], 0, decoded.member)
  redis.call('HSET', KEYS[3], id, cjson.encode(decoded))
  return 0
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
export const DELETE_LUA = `${ROW_FUNCTIONS}
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local removed = remove(ARGV[1])
if removed == 1 and ARGV[2] and tonumber(score) <= tonumber(ARGV[2]) then return 0 end
return removed
`;

/**
 * Replaces a row (its appended events go), first stamping the rows it reads its history from as written now (`touch`).
 * ARGV: id, JSON, now (ms), bytes, meta, owner, member, the oldest score kept (ms), the number N of rows to touch,
 * their N ids, then item ids. Returns how many of those N rows were gone (0: all stamped).
 */
export const PUT_LUA = `${ROW_FUNCTIONS}
local touched = tonumber(ARGV[9])
-- A millisecond apart, in the chain's order, before the row itself: rows stamped in one millisecond would be ordered
-- by id, and eviction would take a chain's later link before its first.
local missing = 0
for i = 10, 9 + touched do
  missing = missing + touch(ARGV[i], tostring(tonumber(ARGV[3]) - (10 + touched - i)), ARGV[8])
end
remove(ARGV[1])
add(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
for i = 10 + touched, #ARGV do redis.call('HSET', KEYS[4], ARGV[i], ARGV[1]) end
return missing
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
export const PUT_IF_UNCHANGED_LUA = `${ROW_FUNCTIONS}
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
export const APPEND_EVENTS_LUA = `${ROW_FUNCTIONS}
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
export const DELETE_IF_UNCHANGED_LUA = `${ROW_FUNCTIONS}
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
return remove(ARGV[1])
`;

/**
 * Evicts expired rows, then rows past the caps: the oldest of the owner holding the most (see the file's header).
 * ARGV: oldest score kept (ms), max entries, max bytes, most rows removed. Returns 1 when more may be left to evict.
 */
export const EVICT_LUA = `${ROW_FUNCTIONS}
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
