// The reserve script behind the Redis-shared budgets (the other scripts are in redis-lua-writes.ts). It runs
// atomically inside Redis (EVALSHA through ioredis `defineCommand`), so "check every rule of every scope, then
// charge all of them or none" cannot interleave with another gateway process. The algorithm mirrors BudgetBook's
// (budgets.ts); `redis-ledger.test.ts` runs the same scripted sequence through both and requires identical verdicts,
// and `redis-window-algorithms.test.ts` runs BudgetBook's window-algorithm table, so keep the two in step.
//
// Expiries are relative (PEXPIRE, computed from the caller's `now`), so Redis's own clock never matters.
// Numbers: times are epoch ms (< 2^53, exact in Lua's doubles); every number passed to redis.call() is formatted
// by Redis with full precision, and string concatenation goes through string.format("%.17g") for the same reason.
// Redis Cluster: every key one script touches carries the same hash tag (redis-keys.ts), so it runs in one slot.
// The file stays whole (about 540 lines): it is one Lua program, run atomically, whose parts share its
// locals (now, tokens, the parsed scopes); cut into string fragments it would be harder to read, not easier.
import { CONCURRENCY_RETRY_MS } from "../limits/budget-types.ts";
import { MAX_EXACT_RUNS } from "../limits/sliding-window.ts";
import { BUDGET_KEEP_MS } from "./redis-keys.ts";
import {
  LEASE_HEADROOM_SHARE,
  LEASE_LIMIT_SHARE,
  LEASE_SLOW_WINDOW_SHARE,
  LEASE_WINDOW_SHARE,
  MAX_LEASE_MS,
  MIN_LEASE_REQUESTS,
} from "./redis-lease-terms.ts";

/**
 * Checks, then charges. KEYS: eleven per scope, in order:
 *   for each sliding window (1 s, 1 min, 1 h): its runs (sorted set: member = run id, score = when its last
 *     charge was made) and its runs hash (run id -> "firstMs,lastMs,requests,tokens", plus the totals `r`, `t`)
 *   day, month  hashes {requests, tokens} of the wall-clock window containing `now` (keyed by its start)
 *   leases      sorted set: score = lease expiry ms, member = reservation id
 *   learned     hash: "unit:window" -> "remaining,resetAtMs,limit,spentSince"; "lease:<member>" -> a budget lease
 *               taken against those windows: "requests,tokens,leaseEndMs"
 *   counters    hash: fixed windows ("f:<windowMs>@<offsetMs>" -> "startMs,requests,tokens", one per length and
 *               alignment, as BudgetBook's fixedKey) and buckets ("b:<r|t>:<windowMs>:<limit>" -> "used,atMs", the
 *               debt as of atMs, drained at limit/windowMs per ms): O(1) per rule, a field read and written
 * A sliding window is SlidingWindow (src/limits/sliding-window.ts) in Redis: exact while it holds fewer than
 * MAX_EXACT_RUNS runs, then charges join the newest run; a check reads the totals, expiry pops runs from the head,
 * so every call costs O(1) amortised (bounded runs), never a scan of the requests in the window.
 * Then one more key, in the first scope's hash tag: the request's charge marker (string: the run ids it was
 * charged into, comma-separated), set when it is charged and kept until its latest window ends. The caller's
 * timeout does not stop a script Redis has queued: a reserve that timed out may still run, and its request is
 * then replayed under the same member. Whichever of the two comes second finds the marker and charges nothing.
 *
 * ARGV: now, member, tokens, lease_until (0: take no concurrency lease; a replay passes it for a request still in
 * flight), lease_ttl_ms, is_forced ("1": charge without checking, for replaying requests sent while Redis was
 * unreachable or a reserve timed out; `now` is then when it was sent),
 * scope_count, lease_floor ("0": no budget lease; else take one if it fits, see below, living at least this
 * many ms where a window allows it), requests (the upstream calls the request makes, each counted by the request
 * rules as the provider counts it: a Llama Guard moderation of N inputs is N; BudgetCost.requests), then per scope:
 * concurrency
 * (-1: none), day_end, month_end, rule_count, then per rule: unit ("r" or "t"), window (ms of a
 * second/minute/hour window; 0: day; -1: month), limit, algorithm ("s" sliding, "f" fixed, "b" bucket; day and
 * month are "s" and count on their wall-clock counters), offset (ms, for "f").
 *
 * A budget lease (redis-budget-leases.ts, docs/limits.md "Budget leases (high limits)"): with wants_budget_lease, after the checks
 * passed, extra requests and tokens are charged with this request, as if spent now, for the caller to spend
 * locally until lease_end. Sliding-window runs get `last = lease_end`, so whatever is spent from the lease counts
 * a full window after the lease's end; the lease never outlives a fixed, day or month window it was charged in.
 * Provider-reported windows (learned) bound it like rules, count it as spent, and keep it as a field
 * `lease:<member>` -> "requests,tokens,lease_end" until its end, for the next report (LEARN_LUA) to count it.
 * None is taken for scopes with a
 * concurrency limit or a bucket rule, nor when a rule's share (a fraction of its limit, and of its headroom) is
 * under MIN_LEASE_REQUESTS requests.
 *
 * Returns {1, run ids..., [lease_requests, lease_tokens, lease_end]} when charged (per scope, per sliding window
 * it uses in 1 s, 1 min, 1 h order: the run the charge went into, "" if none; then, if a lease was taken, its
 * extra requests and tokens, -1 where no rule bounds them and nothing extra was charged, its end, and 1 if it was
 * recorded in a learned hash), or a
 * denial: {0, refusal, ...}, one refusal per scope that refuses (in scope order), the one whose retry is latest
 * (BudgetBook laterDenial): {scope_index, "concurrency", in_flight}, {scope_index, "rule", rule_index, used, amount,
 * retry_at (-1: never)}, {scope_index, "learned", field, left, reset_at} (indexes 0-based), or {2, run ids...} when the
 * marker says the request was charged already (run ids as its first charge returned them; none for a reserve,
 * whose caller gave up on it). A replay finding the marker renews the concurrency lease the first charge may have
 * taken (lease_until > 0) or removes it (0: the request has ended; its release may have come first).
 */
export const RESERVE_LUA = `
local now = tonumber(ARGV[1])
local member = ARGV[2]
local tokens = tonumber(ARGV[3])
local lease_until = tonumber(ARGV[4])
local lease_ttl = tonumber(ARGV[5])
local is_forced = ARGV[6] == '1'
local scope_count = tonumber(ARGV[7])
-- 0: no budget lease; otherwise the shortest life (ms) a lease may need to be of use at all (redis-lease-terms.ts).
local lease_floor = tonumber(ARGV[8]) or 0
local wants_budget_lease = lease_floor > 0
-- The request's upstream calls (BudgetCost.requests): every request rule, day and learned window counts all of them.
-- 0: tokens alone (BudgetCost.isTokensOnly; the caller sends no concurrency either), no request rule refuses them.
local requests = math.max(0, tonumber(ARGV[9]) or 1)
-- Counters outlive their window by a minute so that a late reconcile still finds them.
local KEEP_MS = ${BUDGET_KEEP_MS}
-- The longest a charge marker is kept (15 minutes; see the marker below).
local MARKER_MAX_MS = 900000
local MAX_EXACT_RUNS = ${MAX_EXACT_RUNS}
local CONCURRENCY_RETRY_MS = ${CONCURRENCY_RETRY_MS}
local LEASE_LIMIT_SHARE = ${LEASE_LIMIT_SHARE}
local LEASE_HEADROOM_SHARE = ${LEASE_HEADROOM_SHARE}
local MIN_LEASE_REQUESTS = ${MIN_LEASE_REQUESTS}
local MAX_LEASE_MS = ${MAX_LEASE_MS}
local LEASE_WINDOW_SHARE = ${LEASE_WINDOW_SHARE}
local LEASE_SLOW_WINDOW_SHARE = ${LEASE_SLOW_WINDOW_SHARE}
local WINDOWS = { 1000, 60000, 3600000 }

local function fmt(number) return string.format('%.17g', number) end

local scopes = {}
local a = 10
for s = 1, scope_count do
  local k = (s - 1) * 11
  local scope = {
    windows = {}, window_of = {}, day = KEYS[k + 7], month = KEYS[k + 8], leases = KEYS[k + 9], learned = KEYS[k + 10],
    counters = KEYS[k + 11], counters_keep = 0,
    concurrency = tonumber(ARGV[a]), day_end = tonumber(ARGV[a + 1]), month_end = tonumber(ARGV[a + 2]),
    rules = {}, has_day = false, has_month = false, learned_live = {}
  }
  local uses = {}
  local rule_count = tonumber(ARGV[a + 3])
  a = a + 4
  for r = 1, rule_count do
    local rule = {
      unit = ARGV[a], window = tonumber(ARGV[a + 1]), limit = tonumber(ARGV[a + 2]), algorithm = ARGV[a + 3],
      offset = tonumber(ARGV[a + 4])
    }
    if rule.window == 0 then scope.has_day = true elseif rule.window == -1 then scope.has_month = true
    elseif rule.algorithm == 'f' then
      rule.field = 'f:' .. fmt(rule.window) .. '@' .. fmt(rule.offset)
    elseif rule.algorithm == 'b' then
      rule.field = 'b:' .. rule.unit .. ':' .. fmt(rule.window) .. ':' .. fmt(rule.limit)
    else uses[rule.window] = true end
    -- A fixed window's counter is read until its end, a bucket's debt until it has drained: a window at most.
    if rule.field then scope.counters_keep = math.max(scope.counters_keep, rule.window + KEEP_MS) end
    scope.rules[r] = rule
    a = a + 5
  end
  for i, w in ipairs(WINDOWS) do
    if uses[w] then
      local win = { ms = w, runs = KEYS[k + 2 * i - 1], hash = KEYS[k + 2 * i] }
      scope.windows[#scope.windows + 1] = win
      scope.window_of[w] = win
    end
  end
  scopes[s] = scope
end

local function parse_run(value)
  local first, last, requests, run_tokens = string.match(value, '^([^,]*),([^,]*),([^,]*),([^,]*)$')
  return { first = tonumber(first), last = tonumber(last), requests = tonumber(requests), tokens = tonumber(run_tokens) }
end

local function format_run(run)
  return fmt(run.first) .. ',' .. fmt(run.last) .. ',' .. fmt(run.requests) .. ',' .. fmt(run.tokens)
end

-- SlidingWindow.expire: pops the runs whose last charge left the window, and their totals; counts the runs left
-- (win.count, for charge).
local function expire(win)
  local cutoff = now - win.ms
  local old = redis.call('ZRANGEBYSCORE', win.runs, '-inf', cutoff)
  if #old == 0 then
    win.count = redis.call('ZCARD', win.runs)
    -- Runs and totals live and expire together; should the runs be gone (evicted), so are the totals.
    if win.count == 0 then redis.call('DEL', win.hash) end
    return
  end
  local values = redis.call('HMGET', win.hash, unpack(old))
  local requests, run_tokens = 0, 0
  for i = 1, #values do
    if values[i] then
      local run = parse_run(values[i])
      requests = requests + run.requests
      run_tokens = run_tokens + run.tokens
    end
  end
  redis.call('ZREMRANGEBYSCORE', win.runs, '-inf', cutoff)
  redis.call('HDEL', win.hash, unpack(old))
  win.count = redis.call('ZCARD', win.runs)
  if win.count == 0 then
    redis.call('DEL', win.hash)
  else
    -- 0 - x, not -x: Lua's -0 is formatted "-0", which HINCRBY rejects.
    redis.call('HINCRBY', win.hash, 'r', 0 - requests)
    if run_tokens ~= 0 then redis.call('HINCRBY', win.hash, 't', 0 - run_tokens) end
  end
end

local function totals(win)
  local values = redis.call('HMGET', win.hash, 'r', 't')
  return tonumber(values[1]) or 0, tonumber(values[2]) or 0
end

-- SlidingWindow.retryAtMs: the earliest time at which enough runs have left for amount to fit.
local function sliding_retry_at(win, is_requests, used, amount, limit)
  local ids = redis.call('ZRANGE', win.runs, 0, -1)
  if #ids > 0 then
    local values = redis.call('HMGET', win.hash, unpack(ids))
    for i = 1, #values do
      if values[i] then
        local run = parse_run(values[i])
        used = used - (is_requests and run.requests or run.tokens)
        if used + amount <= limit then return run.last + win.ms end
      end
    end
  end
  return now + win.ms
end

-- SlidingWindow.charge: returns the id of the run the charge went into, or '' when it already left the window.
-- Call expire(win) first. A charge carrying a lease counts its requests and amount tokens until last (its end).
local function charge(win, at, last, requests, amount)
  if at + win.ms <= now then return '' end
  local id = member
  local run = nil
  if win.count >= MAX_EXACT_RUNS then
    local newest = redis.call('ZREVRANGE', win.runs, 0, 0)[1]
    local value = newest and redis.call('HGET', win.hash, newest)
    if value then
      local candidate = parse_run(value)
      if at - candidate.first < win.ms / MAX_EXACT_RUNS then
        id = newest
        run = candidate
        run.requests = run.requests + requests
        run.tokens = run.tokens + amount
        run.first = math.min(run.first, at)
        run.last = math.max(run.last, last)
      end
    end
  end
  if run == nil then
    run = { first = at, last = last, requests = requests, tokens = amount }
    win.count = win.count + 1
  end
  redis.call('ZADD', win.runs, run.last, id)
  redis.call('HSET', win.hash, id, format_run(run))
  redis.call('HINCRBY', win.hash, 'r', requests)
  redis.call('HINCRBY', win.hash, 't', amount)
  -- A lease's run counts until its end plus a window: within win.ms + KEEP_MS, as MAX_LEASE_MS < KEEP_MS.
  redis.call('PEXPIRE', win.runs, win.ms + KEEP_MS)
  redis.call('PEXPIRE', win.hash, win.ms + KEEP_MS)
  return id
end

-- window-counters.ts fixedWindowAt: the fixed window holding now starts here.
local function fixed_start(rule, at)
  return math.floor((at - rule.offset) / rule.window) * rule.window + rule.offset
end

-- A fixed window's counter: its start, requests and tokens (nil when there is none).
local function fixed_counter(scope, rule)
  local value = redis.call('HGET', scope.counters, rule.field)
  if not value then return nil end
  local start, requests, counted = string.match(value, '^([^,]*),([^,]*),([^,]*)$')
  return { start = tonumber(start), requests = tonumber(requests), tokens = tonumber(counted) }
end

-- window-counters.ts bucketUsed: a bucket's exact debt now, after its continuous refill (0: none).
local function bucket_debt(scope, rule)
  local value = redis.call('HGET', scope.counters, rule.field)
  if not value then return 0, nil end
  local used, at = string.match(value, '^([^,]*),([^,]*)$')
  used, at = tonumber(used), tonumber(at)
  local refilled = (math.max(0, now - at) * rule.limit) / rule.window
  return math.max(0, used - refilled), at
end

-- What a second/minute/hour rule has used, and when it has room for amount (scope-windows.ts usedOf and retryAtOf).
local function window_used(scope, rule, is_requests, amount, used_requests, used_tokens)
  if rule.algorithm == 'f' then
    local start = fixed_start(rule, now)
    local counter = fixed_counter(scope, rule)
    local used = 0
    if counter and counter.start == start then used = is_requests and counter.requests or counter.tokens end
    return used, function() return start + rule.window end
  end
  if rule.algorithm == 'b' then
    local debt = bucket_debt(scope, rule)
    -- Compared in whole requests/tokens, as BudgetBook does; the wait is computed from the exact debt.
    return math.ceil(debt - 1e-9), function()
      local excess = debt + amount - rule.limit
      if excess <= 0 then return now end
      return now + math.ceil((excess * rule.window) / rule.limit)
    end
  end
  local used = is_requests and used_requests[rule.window] or used_tokens[rule.window]
  return used, function()
    return sliding_retry_at(scope.window_of[rule.window], is_requests, used, amount, rule.limit)
  end
end

-- BudgetBook laterDenial: keeps the refusal whose retry is later (math.huge: never fits), the earlier on a tie.
local function later(denied, retry_at, reply)
  if denied == nil or retry_at > denied.retry_at then return { retry_at = retry_at, reply = reply } end
  return denied
end

-- The scope's binding refusal (scope-check.ts checkScope): every rule is read, as when the request is allowed, and a
-- refusal does not end the reading, so that a spent rpm does not hide a later tpm or a request that never fits.
local function check_scope(s, scope)
  local denied = nil
  if scope.concurrency >= 0 then
    redis.call('ZREMRANGEBYSCORE', scope.leases, '-inf', now)
    local in_flight = redis.call('ZCARD', scope.leases)
    if in_flight >= scope.concurrency then
      denied = later(denied, now + CONCURRENCY_RETRY_MS, { s - 1, 'concurrency', in_flight })
    end
  end
  local used_requests, used_tokens = {}, {}
  for _, win in ipairs(scope.windows) do
    expire(win)
    used_requests[win.ms], used_tokens[win.ms] = totals(win)
  end
  for r = 1, #scope.rules do
    local rule = scope.rules[r]
    local is_requests = rule.unit == 'r'
    local amount = is_requests and requests or tokens
    local used, retry_of
    if is_requests and amount == 0 then
      -- Tokens alone: no request counted, none refused (scope-check.ts checkScope).
      used = 0
    elseif rule.window > 0 then
      used, retry_of = window_used(scope, rule, is_requests, amount, used_requests, used_tokens)
    else
      local counter = rule.window == 0 and scope.day or scope.month
      used = tonumber(redis.call('HGET', counter, is_requests and 'requests' or 'tokens')) or 0
    end
    rule.used = used
    if used + amount > rule.limit then
      local retry_at
      if amount > rule.limit then
        retry_at = math.huge
      elseif rule.window > 0 then
        retry_at = retry_of()
      else
        retry_at = rule.window == 0 and scope.day_end or scope.month_end
      end
      denied = later(denied, retry_at, { s - 1, 'rule', r - 1, used, amount, retry_at == math.huge and -1 or retry_at })
    end
  end
  local fields = redis.call('HGETALL', scope.learned)
  for i = 1, #fields, 2 do
    local field, value = fields[i], fields[i + 1]
    local remaining, reset_at, limit, spent = string.match(value, '^([^,]*),([^,]*),([^,]*),([^,]*)$')
    reset_at = tonumber(reset_at)
    if string.sub(field, 1, 6) == 'lease:' then
      -- A budget lease taken against these windows (LEARN_LUA reads them); dropped once it has ended.
      local lease_end = tonumber(string.match(value, ',([^,]*)$'))
      if lease_end == nil or lease_end <= now then redis.call('HDEL', scope.learned, field) end
    elseif reset_at == nil or reset_at <= now then
      redis.call('HDEL', scope.learned, field)
    else
      local is_tokens = string.sub(field, 1, 7) == 'tokens:'
      local left = (tonumber(remaining) or 0) - (tonumber(spent) or 0)
      if not is_tokens and requests == 0 then
        -- Tokens alone: a provider's request window neither refuses nor counts them.
      elseif left < (is_tokens and math.max(1, tokens) or requests) then
        denied = later(denied, reset_at, { s - 1, 'learned', field, left, reset_at })
      else
        scope.learned_live[#scope.learned_live + 1] = {
          field = field, remaining = remaining, reset_at = reset_at, limit = limit, is_tokens = is_tokens,
          spent = (tonumber(spent) or 0) + (is_tokens and tokens or requests)
        }
      end
    end
  end
  return denied
end

-- scope-windows.ts chargeCounters: a fixed window's counter once per length and alignment, a bucket per rule. A replayed
-- charge (is_forced: now is when it was sent) never moves a counter back: it is dropped from a fixed window that
-- has ended since, and it adds to a bucket's debt without moving the debt's time back.
local function charge_counters(scope, requests, amount)
  local charged = {}
  for r = 1, #scope.rules do
    local rule = scope.rules[r]
    if rule.algorithm == 'f' and rule.window > 0 and not charged[rule.field] then
      charged[rule.field] = true
      local start = fixed_start(rule, now)
      local counter = fixed_counter(scope, rule)
      if counter == nil or counter.start < start then counter = { start = start, requests = 0, tokens = 0 } end
      if counter.start == start then
        redis.call('HSET', scope.counters, rule.field,
          fmt(start) .. ',' .. fmt(counter.requests + requests) .. ',' .. fmt(counter.tokens + amount))
      end
    elseif rule.algorithm == 'b' and rule.window > 0 then
      local debt, at = bucket_debt(scope, rule)
      local charge_at = at and math.max(at, now) or now
      redis.call('HSET', scope.counters, rule.field,
        fmt(debt + (rule.unit == 'r' and requests or amount)) .. ',' .. fmt(charge_at))
    end
  end
  redis.call('PEXPIRE', scope.counters, scope.counters_keep)
end

-- The budget lease that fits every scope now: extra requests and tokens (-1: no rule bounds them) and its end;
-- nil when none may be taken. Call after every check_scope passed (it reads each rule's used).
local function lease_terms()
  local lease_requests, lease_tokens, lease_end = -1, -1, now + MAX_LEASE_MS
  for s = 1, scope_count do
    local scope = scopes[s]
    if scope.concurrency >= 0 then return nil end
    -- A window the provider reported bounds the lease like a rule: a share of its limit (or of what it said was
    -- left) and of what is left now, never past its reset.
    for _, learned in ipairs(scope.learned_live) do
      local left = (tonumber(learned.remaining) or 0) - learned.spent
      local base = tonumber(learned.limit) or tonumber(learned.remaining) or 0
      local share = math.floor(math.min(base / LEASE_LIMIT_SHARE, left / LEASE_HEADROOM_SHARE))
      if learned.is_tokens then
        if lease_tokens < 0 or share < lease_tokens then lease_tokens = share end
      elseif lease_requests < 0 or share < lease_requests then
        lease_requests = share
      end
      lease_end = math.min(lease_end, learned.reset_at)
    end
    for r = 1, #scope.rules do
      local rule = scope.rules[r]
      if rule.algorithm == 'b' then return nil end
      local is_requests = rule.unit == 'r'
      local headroom = rule.limit - rule.used - (is_requests and requests or tokens)
      local share = math.floor(math.min(rule.limit / LEASE_LIMIT_SHARE, headroom / LEASE_HEADROOM_SHARE))
      if is_requests then
        if lease_requests < 0 or share < lease_requests then lease_requests = share end
      elseif lease_tokens < 0 or share < lease_tokens then
        lease_tokens = share
      end
      if rule.window > 0 then
        local life = math.max(
          math.floor(rule.window / LEASE_WINDOW_SHARE),
          math.min(lease_floor, math.floor(rule.window / LEASE_SLOW_WINDOW_SHARE))
        )
        lease_end = math.min(lease_end, now + life)
        if rule.algorithm == 'f' then lease_end = math.min(lease_end, fixed_start(rule, now) + rule.window) end
      elseif rule.window == 0 then
        lease_end = math.min(lease_end, scope.day_end)
      else
        lease_end = math.min(lease_end, scope.month_end)
      end
    end
  end
  -- At least MIN_LEASE_REQUESTS requests like this one (a Llama Guard moderation's N calls each), as for tokens.
  if lease_requests >= 0 and lease_requests < MIN_LEASE_REQUESTS * requests then return nil end
  if lease_tokens >= 0 and lease_tokens < MIN_LEASE_REQUESTS * math.max(1, tokens) then return nil end
  if lease_end <= now then return nil end
  return lease_requests, lease_tokens, lease_end
end

-- This request's charge marker: the run ids it went into, while a replay could still count it (see "Charged
-- once"). A request whose reserve timed out on the caller is replayed (is_forced) under the same member; whichever
-- of the two runs second finds the marker and charges nothing.
local marker = KEYS[scope_count * 11 + 1]
local first_charge = redis.call('GET', marker)
if first_charge then
  if not is_forced then return { 2 } end
  -- The timed-out reserve ran after all, and may have taken a concurrency lease: renewed while the request is in
  -- flight (lease_until > 0), removed once it has ended (the caller's release may have reached Redis first).
  for s = 1, scope_count do
    local scope = scopes[s]
    if scope.concurrency >= 0 and lease_until > 0 then
      redis.call('ZADD', scope.leases, lease_until, member)
      redis.call('PEXPIRE', scope.leases, lease_ttl * 2)
    elseif scope.concurrency >= 0 then
      redis.call('ZREM', scope.leases, member)
    end
  end
  local reply, start = { 2 }, 1
  while true do
    local comma = string.find(first_charge, ',', start, true)
    reply[#reply + 1] = string.sub(first_charge, start, comma and comma - 1 or -1)
    if not comma then return reply end
    start = comma + 1
  end
end

local lease_requests, lease_tokens, lease_end = nil, nil, nil
if not is_forced then
  -- Every scope is checked, also after one refused: the reply names each refusing scope's binding refusal, the
  -- caller answers with the latest of them and remembers each for its scope.
  local denials = nil
  for s = 1, scope_count do
    local denied = check_scope(s, scopes[s])
    if denied ~= nil then
      denials = denials or { 0 }
      denials[#denials + 1] = denied.reply
    end
  end
  if denials ~= nil then return denials end
  if wants_budget_lease then lease_requests, lease_tokens, lease_end = lease_terms() end
end

-- What this call charges: the request, plus the lease's units (those no rule bounds are not charged).
local charge_requests = requests + (lease_requests and math.max(0, lease_requests) or 0)
local charge_tokens = tokens + (lease_tokens and math.max(0, lease_tokens) or 0)
local charge_last = lease_end or now
local lease_recorded = 0

local charged = { 1 }
-- The marker lives as long as a replay of this request could still count somewhere (from the caller's now, so
-- longer when the script runs late): its latest window's end, or its concurrency lease's life.
local marker_ms = 1
for s = 1, scope_count do
  local scope = scopes[s]
  if scope.concurrency >= 0 then marker_ms = math.max(marker_ms, lease_ttl * 2) end
  for _, win in ipairs(scope.windows) do marker_ms = math.max(marker_ms, charge_last - now + win.ms + KEEP_MS) end
  marker_ms = math.max(marker_ms, scope.counters_keep)
  if scope.has_day then marker_ms = math.max(marker_ms, scope.day_end - now + KEEP_MS) end
  if scope.has_month then marker_ms = math.max(marker_ms, scope.month_end - now + KEEP_MS) end
end
for s = 1, scope_count do
  local scope = scopes[s]
  for _, win in ipairs(scope.windows) do
    if is_forced then expire(win) end
    charged[#charged + 1] = charge(win, now, charge_last, charge_requests, charge_tokens)
  end
  if scope.counters_keep > 0 then charge_counters(scope, charge_requests, charge_tokens) end
  if scope.has_day then
    redis.call('HINCRBY', scope.day, 'requests', charge_requests)
    redis.call('HINCRBY', scope.day, 'tokens', charge_tokens)
    redis.call('PEXPIRE', scope.day, scope.day_end - now + KEEP_MS)
  end
  if scope.has_month then
    redis.call('HINCRBY', scope.month, 'requests', charge_requests)
    redis.call('HINCRBY', scope.month, 'tokens', charge_tokens)
    redis.call('PEXPIRE', scope.month, scope.month_end - now + KEEP_MS)
  end
  for _, learned in ipairs(scope.learned_live) do
    local spent = learned.spent + (learned.is_tokens and charge_tokens - tokens or charge_requests - requests)
    redis.call('HSET', scope.learned, learned.field,
      learned.remaining .. ',' .. fmt(learned.reset_at) .. ',' .. learned.limit .. ',' .. fmt(spent))
  end
  if lease_end and #scope.learned_live > 0 then
    -- A new report of these windows must count this lease until it ends: the provider does not see it yet.
    redis.call('HSET', scope.learned, 'lease:' .. member,
      fmt(charge_requests - requests) .. ',' .. fmt(charge_tokens - tokens) .. ',' .. fmt(lease_end))
    lease_recorded = 1
  end
  if scope.concurrency >= 0 and lease_until > 0 then
    redis.call('ZADD', scope.leases, lease_until, member)
    redis.call('PEXPIRE', scope.leases, lease_ttl * 2)
  end
end
-- Capped: a late reserve runs seconds after its timeout, and the replay comes when the gateway sees Redis again;
-- a marker per request for a whole day or month would hold as many keys as the window's requests, for nothing.
marker_ms = math.max(math.min(marker_ms, MARKER_MAX_MS), lease_ttl * 2)
redis.call('SET', marker, table.concat(charged, ',', 2), 'PX', fmt(marker_ms))
if lease_end then
  charged[#charged + 1] = lease_requests
  charged[#charged + 1] = lease_tokens
  charged[#charged + 1] = lease_end
  charged[#charged + 1] = lease_recorded
end
return charged
`;
