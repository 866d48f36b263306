// The Lua scripts behind the Redis-shared state. Each runs atomically inside Redis (EVALSHA through ioredis
// `defineCommand`), so "check every rule of every scope, then charge all of them or none" cannot interleave with
// another gateway process. The algorithm mirrors BudgetBook's (budgets.ts); `redis-ledger.test.ts` runs the same
// scripted sequence through both and requires identical verdicts, so keep the two in step.
//
// Expiries are relative (PEXPIRE, computed from the caller's `now`), so Redis's own clock never matters.
// Numbers: times are epoch ms (< 2^53, exact in Lua's doubles); every number passed to redis.call() is formatted
// by Redis with full precision, and string concatenation goes through string.format("%.17g") for the same reason.

/**
 * Checks, then charges. KEYS: seven per scope, in order:
 *   log        sorted set: score = sent-at ms, member = reservation id (entries up to the longest sliding window)
 *   log_tokens hash: reservation id -> tokens
 *   windows    hash: per sliding token window W (ms), "W:tokens" (the running token sum of the entries inside W)
 *              and "W:cursor" (the cutoff up to which entries that left W were subtracted): a check costs O(log n)
 *              plus the entries that left since the last one, not a walk over the whole log
 *   day, month hashes {requests, tokens} of the wall-clock window containing `now` (keyed by its start)
 *   leases     sorted set: score = lease expiry ms, member = reservation id
 *   learned    hash: "unit:window" -> "remaining,resetAtMs,limit,spentSince"
 *
 * ARGV: now, member, tokens, lease_until (0: take no lease), lease_ttl_ms, is_forced ("1": charge without
 * checking, for replaying requests sent while Redis was unreachable; `now` is then when it was sent),
 * scope_count, then per scope: concurrency (-1: none), day_end, month_end, horizon_ms (longest sliding window;
 * 0: none), has_token_log ("1"/"0"), rule_count, then per rule: unit ("r" or "t"), window (ms of a sliding
 * window; 0: day; -1: month), limit.
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

local function fmt(number) return string.format('%.17g', number) end

local scopes = {}
local a = 8
for s = 1, scope_count do
  local k = (s - 1) * 7
  local scope = {
    log = KEYS[k + 1], log_tokens = KEYS[k + 2], windows = KEYS[k + 3], day = KEYS[k + 4], month = KEYS[k + 5],
    leases = KEYS[k + 6], learned = KEYS[k + 7],
    concurrency = tonumber(ARGV[a]), day_end = tonumber(ARGV[a + 1]), month_end = tonumber(ARGV[a + 2]),
    horizon = tonumber(ARGV[a + 3]), has_token_log = ARGV[a + 4] == '1',
    rules = {}, token_windows = {}, has_day = false, has_month = false, learned_live = {}
  }
  local rule_count = tonumber(ARGV[a + 5])
  a = a + 6
  for r = 1, rule_count do
    local rule = { unit = ARGV[a], window = tonumber(ARGV[a + 1]), limit = tonumber(ARGV[a + 2]) }
    if rule.window == 0 then scope.has_day = true elseif rule.window == -1 then scope.has_month = true end
    if rule.window > 0 and rule.unit == 't' then scope.token_windows[rule.window] = true end
    scope.rules[r] = rule
    a = a + 3
  end
  scopes[s] = scope
end

local function sum_tokens(scope, members)
  local total = 0
  for i = 1, #members, 1000 do
    local values = redis.call('HMGET', scope.log_tokens, unpack(members, i, math.min(i + 999, #members)))
    for j = 1, #values do total = total + (tonumber(values[j]) or 0) end
  end
  return total
end

-- The token sum of sliding window w now: the running sum minus the entries that left w since the last check
-- (rebuilt from the log when there is no running sum yet, or the log expired under it).
local function window_tokens(scope, w)
  local cutoff = now - w
  local cursor = tonumber(redis.call('HGET', scope.windows, w .. ':cursor'))
  local used
  if cursor == nil or redis.call('EXISTS', scope.log) == 0 then
    cursor = nil
    used = sum_tokens(scope, redis.call('ZRANGEBYSCORE', scope.log, '(' .. fmt(cutoff), '+inf'))
  else
    used = tonumber(redis.call('HGET', scope.windows, w .. ':tokens')) or 0
    if cutoff > cursor then
      used = used - sum_tokens(scope, redis.call('ZRANGEBYSCORE', scope.log, '(' .. fmt(cursor), cutoff))
    end
  end
  if cursor == nil or cutoff > cursor then
    redis.call('HSET', scope.windows, w .. ':cursor', math.max(cursor or cutoff, cutoff), w .. ':tokens', used)
    redis.call('PEXPIRE', scope.windows, scope.horizon + KEEP_MS)
  end
  return used
end

-- Drops entries older than the longest window (after window_tokens has subtracted them).
local function trim_log(scope)
  local cutoff = now - scope.horizon
  local old = redis.call('ZRANGEBYSCORE', scope.log, '-inf', cutoff)
  if #old == 0 then return end
  redis.call('ZREMRANGEBYSCORE', scope.log, '-inf', cutoff)
  if scope.has_token_log then
    for i = 1, #old, 1000 do
      redis.call('HDEL', scope.log_tokens, unpack(old, i, math.min(i + 999, #old)))
    end
  end
end

-- BudgetBook#retryAt: the earliest time at which enough old entries have left window w for amount to fit.
local function sliding_retry_at(scope, rule, used, amount)
  local w = rule.window
  local since = '(' .. fmt(now - w)
  if rule.unit == 'r' then
    -- The k-th oldest entry in the window is the one whose leaving makes room: O(log n).
    local entry = redis.call('ZRANGEBYSCORE', scope.log, since, '+inf', 'WITHSCORES', 'LIMIT', used + amount - rule.limit - 1, 1)
    if #entry == 2 then return tonumber(entry[2]) + w end
    return now + w
  end
  local offset = 0
  while true do
    local flat = redis.call('ZRANGEBYSCORE', scope.log, since, '+inf', 'WITHSCORES', 'LIMIT', offset, 256)
    if #flat == 0 then return now + w end
    local members = {}
    for i = 1, #flat, 2 do members[#members + 1] = flat[i] end
    local costs = redis.call('HMGET', scope.log_tokens, unpack(members))
    for i = 1, #members do
      used = used - (tonumber(costs[i]) or 0)
      if used + amount <= rule.limit then return tonumber(flat[i * 2]) + w end
    end
    offset = offset + 256
  end
end

local function check_scope(s, scope)
  if scope.concurrency >= 0 then
    redis.call('ZREMRANGEBYSCORE', scope.leases, '-inf', now)
    local in_flight = redis.call('ZCARD', scope.leases)
    if in_flight >= scope.concurrency then return { 0, s - 1, 'concurrency', in_flight } end
  end
  local window_used = {}
  for w in pairs(scope.token_windows) do window_used[w] = window_tokens(scope, w) end
  if scope.horizon > 0 then trim_log(scope) end
  for r = 1, #scope.rules do
    local rule = scope.rules[r]
    local is_requests = rule.unit == 'r'
    local amount = is_requests and 1 or tokens
    local used
    if rule.window > 0 then
      if is_requests then
        used = redis.call('ZCOUNT', scope.log, '(' .. fmt(now - rule.window), '+inf')
      else
        used = window_used[rule.window]
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
        retry_at = sliding_retry_at(scope, rule, used, amount)
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
      for w in pairs(scope.token_windows) do
        -- Counted in w unless w's cursor already passed it (a replay of an old request); no cursor: the next
        -- check rebuilds the sum from the log, this entry included.
        local cursor = tonumber(redis.call('HGET', scope.windows, w .. ':cursor'))
        if cursor ~= nil and now > cursor then redis.call('HINCRBY', scope.windows, w .. ':tokens', tokens) end
      end
      redis.call('PEXPIRE', scope.windows, scope.horizon + KEEP_MS)
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
      learned.remaining .. ',' .. fmt(learned.reset_at) .. ',' .. learned.limit .. ',' .. fmt(learned.spent))
  end
  if scope.concurrency >= 0 and lease_until > 0 then
    redis.call('ZADD', scope.leases, lease_until, member)
    redis.call('PEXPIRE', scope.leases, lease_ttl * 2)
  end
end
return { 1 }
`;

/**
 * Replaces a reservation's estimated token cost with the real one. KEYS: five per scope: log, log_tokens,
 * windows, and the day and month counters of the window the reservation was charged in. ARGV: member, delta.
 * The entry's cost is floored at 0 (as in BudgetBook) and every running window sum that still counts the entry
 * moves by the same amount. Counters that expired (or were never charged) are left alone rather than recreated
 * without an expiry.
 */
export const RECONCILE_LUA = `
local member = ARGV[1]
local delta = tonumber(ARGV[2])
for i = 1, #KEYS, 5 do
  local log, log_tokens, windows = KEYS[i], KEYS[i + 1], KEYS[i + 2]
  local current = redis.call('HGET', log_tokens, member)
  if current then
    local old = tonumber(current)
    local new = math.max(0, old + delta)
    redis.call('HSET', log_tokens, member, new)
    local at = tonumber(redis.call('ZSCORE', log, member))
    if at ~= nil and new ~= old then
      local fields = redis.call('HGETALL', windows)
      for j = 1, #fields, 2 do
        local w = string.match(fields[j], '^(%d+):cursor$')
        if w ~= nil and at > tonumber(fields[j + 1]) then
          redis.call('HINCRBY', windows, w .. ':tokens', new - old)
        end
      end
    end
  end
  for j = i + 3, i + 4 do
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
