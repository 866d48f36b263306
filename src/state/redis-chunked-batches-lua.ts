// The scripts of a client's embeddings batches under way (redis-chunked-batches.ts): a sorted set of batch ids scored
// by their deadlines and a hash of what each has still to charge, both tagged with the client's budget keys' tag.

/** Batches under way kept per client: a full record refuses the next batch until one ends or lapses. */
export const MOST_CHUNKED_BATCHES = 64;
/** ms the record outlives its latest deadline (a clock a little behind another replica's). */
export const CHUNKED_BATCHES_KEEP_MS = 1_000;

/**
 * Prunes the batches past their deadline (scored by it: no scan of live ones), sums what the others have still to
 * charge, and admits the new one only if, with them, it fits the client's token windows before the earliest deadline
 * among those with tokens left, each window's room counted as pipeline/window-capacity.ts windowCapacity counts it
 * (from now). KEYS: the sorted set (id -> deadline), the hash (id -> tokens left). ARGV: now, id, tokens, deadline,
 * most, keep ms, then what this process admitted while Redis was away (tokens left, earliest deadline among those
 * owing, latest deadline), then a count of windows and 6 values per window: kind (`bucket`, `unknown`: a provider's
 * report without its limit, else `window`), window ms, limit, remaining, reset ms (""), lapse ms (""), then a count of
 * this process's batches admitted here and 3 values per batch: id, tokens left, deadline. One of those not listed
 * (Redis lost its data: restarted empty, flushed, a failover to a replica the entry had not reached; an admission
 * that timed out and never ran) is listed again before the count: without it the process running it no longer counted
 * it, as it did alone before the record was shared, and a batch it would have refused was admitted and took the room
 * the first had been promised. Each one's tokens left are set too (an admission that ran past its timeout listed
 * the batch's whole tokens).
 * Replies {1} (admitted) or {0, tokens of the others, the earliest deadline counted, the latest deadline}.
 */
export const CHUNKED_BATCH_ADMIT_LUA = `
local function fmt(number) return string.format('%.17g', number) end
local now, id, tokens, deadline = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local most, keep = tonumber(ARGV[5]), tonumber(ARGV[6])
local others, earliest, latest = tonumber(ARGV[7]), math.min(deadline, tonumber(ARGV[8])), tonumber(ARGV[9])
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #lapsed > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('HDEL', KEYS[2], unpack(lapsed))
end
local windows = tonumber(ARGV[10])
local own = 11 + windows * 6
local written = false
for b = 1, tonumber(ARGV[own]) do
  local a = own + (b - 1) * 3
  local due = tonumber(ARGV[a + 3])
  if due > now then
    if not redis.call('ZSCORE', KEYS[1], ARGV[a + 1]) then
      redis.call('ZADD', KEYS[1], due, ARGV[a + 1])
    end
    redis.call('HSET', KEYS[2], ARGV[a + 1], ARGV[a + 2])
    written = true
  end
end
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #entries, 2 do
  local due = tonumber(entries[i + 1])
  local rest = tonumber(redis.call('HGET', KEYS[2], entries[i]) or '0') or 0
  others = others + rest
  if rest > 0 and due < earliest then earliest = due end
  if due > latest then latest = due end
end
local function capacity(w, span)
  local a = 11 + (w - 1) * 6
  local kind, window_ms = ARGV[a], tonumber(ARGV[a + 1])
  local limit, remaining = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local resets_at, lapses_at = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  if lapses_at and lapses_at <= now + span then return math.huge end
  if kind == 'unknown' then
    if resets_at == nil or resets_at <= now + span then return math.huge end
    return remaining
  end
  if kind == 'bucket' then return math.min(limit, remaining) + limit * span / window_ms end
  local reset_at = resets_at or (now + window_ms)
  local first, base = 0, remaining
  if now >= reset_at then
    first = math.floor((now - reset_at) / window_ms) + 1
    base = limit
  end
  local last = math.floor((now + span - reset_at) / window_ms)
  return base + limit * math.max(0, last - first + 1)
end
local fits = #entries / 2 < most
if fits then
  for w = 1, windows do
    if capacity(w, earliest - now) < tokens + others then
      fits = false
      break
    end
  end
end
local function expire(last)
  local ttl = math.ceil(last - now + keep)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
if not fits then
  -- An entry listed again (or its rest set) holds its keys until the latest deadline, as an admission does.
  if written then expire(latest) end
  return {0, fmt(others), fmt(earliest), fmt(latest)}
end
redis.call('ZADD', KEYS[1], deadline, id)
redis.call('HSET', KEYS[2], id, ARGV[3])
expire(math.max(latest, deadline))
return {1}
`;

/**
 * A batch's tokens left (ARGV: id, tokens), only while it is listed: an ended or lapsed batch is not brought back.
 * With its deadline, now and keep ms after them (its replica telling it again once Redis is back: Redis may have lost
 * it), one not listed is listed again while its deadline is ahead, its keys kept until then at least.
 */
export const CHUNKED_BATCH_REST_LUA = `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
elseif ARGV[3] then
  local deadline, now = tonumber(ARGV[3]), tonumber(ARGV[4])
  if deadline > now then
    redis.call('ZADD', KEYS[1], deadline, ARGV[1])
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
    local ttl = math.ceil(deadline - now + tonumber(ARGV[5]))
    for _, key in ipairs(KEYS) do
      if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
    end
  end
end
return 1
`;

/** A batch ended (ARGV: id). */
export const CHUNKED_BATCH_END_LUA = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`;
