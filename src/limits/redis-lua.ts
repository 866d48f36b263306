// The Lua scripts behind the Redis-shared state. Each runs atomically inside Redis (EVALSHA through ioredis
// `defineCommand`), so "check every rule of every scope, then charge all of them or none" cannot interleave with
// another gateway process. The algorithm mirrors BudgetBook's (budgets.ts); `redis-ledger.test.ts` runs the same
// scripted sequence through both and requires identical verdicts, so keep the two in step.
//
// Expiries are relative (PEXPIRE, computed from the caller's `now`), so Redis's own clock never matters.
// Numbers: times are epoch ms (< 2^53, exact in Lua's doubles); every number passed to redis.call() is formatted
// by Redis with full precision, and string concatenation goes through string.format("%.17g") for the same reason.

/**
 * Checks, then charges. KEYS: six per scope, in order: log (sorted set: score = sent-at ms, member = reservation
 * id), log_tokens (hash: reservation id -> tokens), day and month (hashes {requests, tokens} of the wall-clock
 * window containing `now`), leases (sorted set: score = lease expiry ms, member = reservation id), learned (hash:
 * "unit:window" -> "remaining,resetAtMs,limit,spentSince").
 *
 * ARGV: now, member, tokens, lease_until (0: take no lease), lease_ttl_ms, is_forced ("1": charge without
 * checking, for replaying requests sent while Redis was unreachable), scope_count, then per scope: concurrency
 * (-1: none), day_end, month_end, horizon_ms (longest sliding window; 0: none), has_token_log ("1"/"0"),
 * rule_count, then per rule: unit ("r" or "t"), window (ms of a sliding window; 0: day; -1: month), limit.
 *
 * Returns {1} when charged, or a denial: {0, scope_index, "concurrency", in_flight}, {0, scope_index, "rule",
 * rule_index, used, amount, retry_at (-1: never)}, {0, scope_index, "learned", field, left, reset_at}
 * (indexes 0-based).
 */
export const RESERVE_LUA = `
local now = tonumber(ARGV[1])
local member = ARGV[2]
local tokens = tonumber(ARGV[3])
local lease_until = tonumber(ARGV[4])
local lease_ttl = tonumber(ARGV[5])
local is_forced = ARGV[6] == '1'
local scope_count = tonumber(ARGV[7])
-- Counters outlive their window by a minute so that a late reconcile still finds them.
local KEEP_MS = 60000

local scopes = {}
local a = 8
for s = 1, scope_count do
  local k = (s - 1) * 6
  local scope = {
    log = KEYS[k + 1], log_tokens = KEYS[k + 2], day = KEYS[k + 3], month = KEYS[k + 4],
    leases = KEYS[k + 5], learned = KEYS[k + 6],
    concurrency = tonumber(ARGV[a]), day_end = tonumber(ARGV[a + 1]), month_end = tonumber(ARGV[a + 2]),
    horizon = tonumber(ARGV[a + 3]), has_token_log = ARGV[a + 4] == '1',
    rules = {}, has_day = false, has_month = false, learned_live = {}
  }
  local rule_count = tonumber(ARGV[a + 5])
  a = a + 6
  for r = 1, rule_count do
    local rule = { unit = ARGV[a], window = tonumber(ARGV[a + 1]), limit = tonumber(ARGV[a + 2]) }
    if rule.window == 0 then scope.has_day = true elseif rule.window == -1 then scope.has_month = true end
    scope.rules[r] = rule
    a = a + 3
  end
  scopes[s] = scope
end

local function chunked(command, key, items)
  for i = 1, #items, 1000 do
    redis.call(command, key, unpack(items, i, math.min(i + 999, #items)))
  end
end

-- The sliding log after dropping entries older than the longest window: times ascending, with token costs.
local function live_log(scope)
  local times, costs = {}, {}
  if scope.horizon <= 0 then return times, costs end
  local cutoff = now - scope.horizon
  local old = redis.call('ZRANGEBYSCORE', scope.log, '-inf', cutoff)
  if #old > 0 then
    redis.call('ZREMRANGEBYSCORE', scope.log, '-inf', cutoff)
    if scope.has_token_log then chunked('HDEL', scope.log_tokens, old) end
  end
  local flat = redis.call('ZRANGE', scope.log, 0, -1, 'WITHSCORES')
  local members = {}
  for i = 1, #flat, 2 do
    members[#members + 1] = flat[i]
    times[#times + 1] = tonumber(flat[i + 1])
  end
  if scope.has_token_log and #members > 0 then
    for i = 1, #members, 1000 do
      local values = redis.call('HMGET', scope.log_tokens, unpack(members, i, math.min(i + 999, #members)))
      for j = 1, #values do costs[i + j - 1] = tonumber(values[j]) or 0 end
    end
  end
  return times, costs
end

-- BudgetBook#retryAt: the earliest time at which enough old entries have left the window for amount to fit.
local function sliding_retry_at(times, costs, is_requests, window, limit, amount)
  local since = now - window
  local used = 0
  for i = 1, #times do
    if times[i] > since then used = used + (is_requests and 1 or costs[i]) end
  end
  for i = 1, #times do
    if times[i] > since then
      used = used - (is_requests and 1 or costs[i])
      if used + amount <= limit then return times[i] + window end
    end
  end
  return now + window
end

local function check_scope(s, scope)
  if scope.concurrency >= 0 then
    redis.call('ZREMRANGEBYSCORE', scope.leases, '-inf', now)
    local in_flight = redis.call('ZCARD', scope.leases)
    if in_flight >= scope.concurrency then return { 0, s - 1, 'concurrency', in_flight } end
  end
  local times, costs = live_log(scope)
  for r = 1, #scope.rules do
    local rule = scope.rules[r]
    local is_requests = rule.unit == 'r'
    local amount = is_requests and 1 or tokens
    local used = 0
    if rule.window > 0 then
      local since = now - rule.window
      for i = 1, #times do
        if times[i] > since then used = used + (is_requests and 1 or costs[i]) end
      end
    else
      local counter = rule.window == 0 and scope.day or scope.month
      used = tonumber(redis.call('HGET', counter, is_requests and 'requests' or 'tokens')) or 0
    end
    if used + amount > rule.limit then
      local retry_at
      if amount > rule.limit then
        retry_at = -1
      elseif rule.window > 0 then
        retry_at = sliding_retry_at(times, costs, is_requests, rule.window, rule.limit, amount)
      else
        retry_at = rule.window == 0 and scope.day_end or scope.month_end
      end
      return { 0, s - 1, 'rule', r - 1, used, amount, retry_at }
    end
  end
  local fields = redis.call('HGETALL', scope.learned)
  for i = 1, #fields, 2 do
    local field, value = fields[i], fields[i + 1]
    local remaining, reset_at, limit, spent = string.match(value, '^([^,]*),([^,]*),([^,]*),([^,]*)$')
    reset_at = tonumber(reset_at)
    if reset_at == nil or reset_at <= now then
      redis.call('HDEL', scope.learned, field)
    else
      local is_tokens = string.sub(field, 1, 7) == 'tokens:'
      local left = (tonumber(remaining) or 0) - (tonumber(spent) or 0)
      if left < (is_tokens and math.max(1, tokens) or 1) then
        return { 0, s - 1, 'learned', field, left, reset_at }
      end
      scope.learned_live[#scope.learned_live + 1] = {
        field = field, remaining = remaining, reset_at = reset_at, limit = limit,
        spent = (tonumber(spent) or 0) + (is_tokens and tokens or 1)
      }
    end
  end
  return nil
end

if not is_forced then
  for s = 1, scope_count do
    local denied = check_scope(s, scopes[s])
    if denied ~= nil then return denied end
  end
end

for s = 1, scope_count do
  local scope = scopes[s]
  if scope.horizon > 0 then
    redis.call('ZADD', scope.log, now, member)
    redis.call('PEXPIRE', scope.log, scope.horizon + KEEP_MS)
    if scope.has_token_log then
      redis.call('HSET', scope.log_tokens, member, tokens)
      redis.call('PEXPIRE', scope.log_tokens, scope.horizon + KEEP_MS)
    end
  end
  if scope.has_day then
    redis.call('HINCRBY', scope.day, 'requests', 1)
    redis.call('HINCRBY', scope.day, 'tokens', tokens)
    redis.call('PEXPIRE', scope.day, scope.day_end - now + KEEP_MS)
  end
  if scope.has_month then
    redis.call('HINCRBY', scope.month, 'requests', 1)
    redis.call('HINCRBY', scope.month, 'tokens', tokens)
    redis.call('PEXPIRE', scope.month, scope.month_end - now + KEEP_MS)
  end
  for _, learned in ipairs(scope.learned_live) do
    redis.call('HSET', scope.learned, learned.field,
      learned.remaining .. ',' .. string.format('%.17g', learned.reset_at) .. ',' .. learned.limit .. ',' ..
      string.format('%.17g', learned.spent))
  end
  if scope.concurrency >= 0 and lease_until > 0 then
    redis.call('ZADD', scope.leases, lease_until, member)
    redis.call('PEXPIRE', scope.leases, lease_ttl * 2)
  end
end
return { 1 }
`;

/**
 * Replaces a reservation's estimated token cost with the real one. KEYS: three per scope: log_tokens, and the
 * day and month counters of the window the reservation was charged in. ARGV: member, delta. Counters that
 * expired (or were never charged) are left alone rather than recreated without an expiry.
 */
export const RECONCILE_LUA = `
local member = ARGV[1]
local delta = tonumber(ARGV[2])
for i = 1, #KEYS, 3 do
  local current = redis.call('HGET', KEYS[i], member)
  if current then redis.call('HSET', KEYS[i], member, math.max(0, tonumber(current) + delta)) end
  for j = i + 1, i + 2 do
    if redis.call('EXISTS', KEYS[j]) == 1 then
      if redis.call('HINCRBY', KEYS[j], 'tokens', delta) < 0 then redis.call('HSET', KEYS[j], 'tokens', 0) end
    end
  end
end
return 1
`;

/**
 * Stores what a provider's rate-limit headers said. KEYS[1]: learned hash. ARGV: now, then per window: field,
 * value ("remaining,resetAtMs,limit,0"), reset_at. The hash lives until its latest reset.
 */
export const LEARN_LUA = `
local now = tonumber(ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
local keep_ms = ttl > 0 and ttl or 0
for i = 2, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  keep_ms = math.max(keep_ms, tonumber(ARGV[i + 2]) - now)
end
if keep_ms > 0 then redis.call('PEXPIRE', KEYS[1], keep_ms) end
return 1
`;

/**
 * Shares a cooldown: stored unless Redis already holds one for the same key that ends later (a later end wins,
 * as in AvailabilityBook.importCooldowns), then published. KEYS[1]: cooldown key. ARGV: cooldown JSON, until_ms,
 * ttl_ms, channel, message. Returns 1 if stored and published.
 */
export const SHARE_COOLDOWN_LUA = `
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded.untilMs) ~= nil
    and tonumber(decoded.untilMs) >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`;
