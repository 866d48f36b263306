// The Lua script that keeps the tool calls' `extra_content` and `reasoning_details` in Redis under one client's byte
// budget (redis-tool-call-extras.ts: the keys it names, and why the budget).

/**
 * Bytes each value counts in its client's budget beyond its id and JSON: what Redis itself spends on it (its key, its
 * expiry, its entries in the order and the sizes: ~400 bytes measured on Redis 7). Without it a client's tiny values
 * (a 30-byte signature) held ~14 times their budget of Redis's memory (909 MB for 64 MiB), and one 1 MiB value
 * arriving evicted 35,000 of them in one script, Redis running nothing else for ~360 ms; now each eviction frees at
 * least this much, so a script evicts at most what it writes / this (2,048 for 1 MiB).
 */
export const REDIS_KEY_COST_BYTES = 512;

/**
 * Writes a client's values and keeps its total within its budget, in one step (two replicas writing for one client
 * at once must not both find room). KEYS: the scope's order (sorted set: id -> expiry, ms on Redis's clock), sizes
 * (hash: id -> bytes, its id and REDIS_KEY_COST_BYTES included), total (string: the sizes' sum), then each value's
 * key. ARGV: the value keys' start (the scope's tag and ':'; a value key is it and the id), the TTL (ms), the budget (bytes), then id and JSON
 * of each value, in the order of their keys. Expired values (gone from Redis by their own PX) stop counting; past the
 * budget the oldest go, the values just written last. The three bookkeeping keys expire with the newest value.
 * Returns how many values were evicted.
 */
export const KEEP_WITHIN_BUDGET_LUA = `
local keyCost = ${REDIS_KEY_COST_BYTES}
-- Redis before 5 replicated scripts verbatim, where a write after TIME is refused; a no-op since.
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
-- The three change and expire together: one gone without the others (a maxmemory policy evicted it: a client that
-- only reads leaves them its least recently used keys) and the rest no longer match it (a lost order or sizes left the
-- total over the budget for ever, each new value evicted as it was written). They start again; the values they
-- counted are left to their own expiry, uncounted (one budget more at most, for up to the TTL).
local present = redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3])
if present == 1 or present == 2 then redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3]) end
local function forget(id)
  redis.call('ZREM', KEYS[1], id)
  local bytes = redis.call('HGET', KEYS[2], id)
  if not bytes then return 0 end
  redis.call('HDEL', KEYS[2], id)
  redis.call('DECRBY', KEYS[3], bytes)
  return tonumber(bytes)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000)) do forget(id) end
local key = 4
for i = 4, #ARGV, 2 do
  local id, json = ARGV[i], ARGV[i + 1]
  forget(id)
  redis.call('SET', KEYS[key], json, 'PX', ttl)
  redis.call('ZADD', KEYS[1], now + ttl, id)
  redis.call('HSET', KEYS[2], id, #id + #json + keyCost)
  redis.call('INCRBY', KEYS[3], #id + #json + keyCost)
  key = key + 1
end
local total = tonumber(redis.call('GET', KEYS[3]) or '0')
local evicted = 0
while total > budget do
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if not oldest then break end
  total = total - forget(oldest)
  -- Built from the tag's key, so in the same Cluster slot as the declared keys.
  redis.call('DEL', ARGV[1] .. oldest)
  evicted = evicted + 1
end
for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], ttl) end
return evicted
`;
