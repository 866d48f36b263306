// The Redis scripts besides the reserve (redis-lua.ts): reservations' real token counts and sends, the windows a provider's
// headers reported, a shared cooldown and a refused feature. Each runs atomically; every key one script touches
// carries the same hash tag (redis-keys.ts), so it runs in one Redis Cluster slot. Numbers are formatted with "%.17g",
// as there.
import { BUDGET_KEEP_MS, ONCE_APPLIED_KEEP_MS, ONCE_APPLIED_MAX } from "./redis-keys.ts";
import { RESERVE_LUA } from "./redis-lua.ts";

/**
 * A reconcile, one write of WRITE_BATCH_LUA, as a Lua function `reconcile(k, last, a)` reading its keys from
 * KEYS[k..last] and its arguments from ARGV[a..]. It moves a charge's cost: a reservation's estimated token count
 * replaced by the real one (request_delta 0), a budget lease's unused requests and tokens given back (both deltas
 * negative), or calls never sent given back (token_delta 0). Keys: the runs hash of every sliding window the charge
 * went to (run_count of them), then the day and month counters of the windows it was charged in (wall_count: two per
 * scope), then one counters hash per fixed window or token bucket it was charged to. Arguments: token_delta,
 * request_delta, run_count, the run id per runs hash, wall_count, then per counters hash: the field and the fixed
 * window's start ("" for a bucket). A run's cost is floored at 0 (as in SlidingWindow.adjust) and the window's totals
 * move by the same amount; a run that left its window, a fixed window that has ended, or a counter that expired (or
 * was never charged), is left alone rather than recreated. A token bucket's debt moves by token_delta, a request
 * bucket's (field `b:r:...`, redis-script-shapes.ts bucketField) by request_delta (floored at 0): tokens the answer
 * did not use, and calls never sent, are back at once. The debt's time stays: the refill since it is the script's to
 * compute at the next charge, from the debt as it was left.
 */
const RECONCILE_FUNCTION = `
local function fmt(number) return string.format('%.17g', number) end
local function reconcile(k, last, a)
  local delta = tonumber(ARGV[a])
  local request_delta = tonumber(ARGV[a + 1])
  local run_count = tonumber(ARGV[a + 2])
  local wall_count = tonumber(ARGV[a + 3 + run_count])
  for i = 1, run_count do
    local hash, id = KEYS[k + i - 1], ARGV[a + 2 + i]
    local value = redis.call('HGET', hash, id)
    if value then
      local first, last_ms, requests, tokens = string.match(value, '^([^,]*),([^,]*),([^,]*),([^,]*)$')
      local old_requests, old_tokens = tonumber(requests), tonumber(tokens)
      local new_requests = math.max(0, old_requests + request_delta)
      local new_tokens = math.max(0, old_tokens + delta)
      if new_requests ~= old_requests or new_tokens ~= old_tokens then
        redis.call('HSET', hash, id, first .. ',' .. last_ms .. ',' .. fmt(new_requests) .. ',' .. fmt(new_tokens))
        if new_requests ~= old_requests then redis.call('HINCRBY', hash, 'r', new_requests - old_requests) end
        if new_tokens ~= old_tokens then redis.call('HINCRBY', hash, 't', new_tokens - old_tokens) end
      end
    end
  end
  for j = k + run_count, k + run_count + wall_count - 1 do
    if redis.call('EXISTS', KEYS[j]) == 1 then
      if delta ~= 0 and redis.call('HINCRBY', KEYS[j], 'tokens', delta) < 0 then redis.call('HSET', KEYS[j], 'tokens', 0) end
      if request_delta ~= 0 and redis.call('HINCRBY', KEYS[j], 'requests', request_delta) < 0 then
        redis.call('HSET', KEYS[j], 'requests', 0)
      end
    end
  end
  local c = a + 4 + run_count
  for j = k + run_count + wall_count, last do
    local field, start = ARGV[c], ARGV[c + 1]
    c = c + 2
    local value = redis.call('HGET', KEYS[j], field)
    if value and start ~= '' then
      local counter_start, requests, tokens = string.match(value, '^([^,]*),([^,]*),([^,]*)$')
      if counter_start == start then
        redis.call('HSET', KEYS[j], field, counter_start .. ',' .. fmt(math.max(0, tonumber(requests) + request_delta))
          .. ',' .. fmt(math.max(0, tonumber(tokens) + delta)))
      end
    elseif value then
      local used, at = string.match(value, '^([^,]*),([^,]*)$')
      local bucket_delta = string.sub(field, 1, 4) == 'b:r:' and request_delta or delta
      if bucket_delta ~= 0 then
        redis.call('HSET', KEYS[j], field, fmt(math.max(0, tonumber(used) + bucket_delta)) .. ',' .. at)
      end
    end
  end
end
`;

/**
 * One more request in flight beside a reservation's own (RedisLedger.takeInFlight: a Llama Guard moderation's parallel
 * calls): a concurrency lease in every scope's leases, or in none. KEYS: the leases sorted set of each scope with a
 * concurrency. ARGV: now_ms, lease_until, member, keep_ms (the sets' life, as the reserve's: twice the lease TTL), then
 * each scope's concurrency. Expired leases are dropped first, as RESERVE_LUA's check does; a scope at its concurrency
 * refuses (0), else the member is added to every set (1).
 */
export const TAKE_IN_FLIGHT_LUA = `
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[4 + i]) then return 0 end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[2], ARGV[3])
  redis.call('PEXPIRE', KEYS[i], ARGV[4])
end
return 1
`;

/**
 * A retime, one write of WRITE_BATCH_LUA, as a Lua function `retime(k, last, a)` reading its keys from KEYS[k..last]
 * and its arguments from ARGV[a..]. A reservation's request was sent at sent_ms, after it was charged
 * (BudgetBook.markSent, SlidingWindow.retime): each sliding-window run it was charged to counts until sent_ms plus its
 * window, if it did not already. Other charges in a run move with it (counted a little longer, never less). Safe to
 * apply twice: it only ever moves a run later. A run no longer there (it left its window, or Redis restarted) is left
 * alone. Keys: per run, its runs sorted set and runs hash. Arguments: sent_ms, now_ms, then per run: its id and its
 * window's ms. The keys' lives are stretched to keep the run (the reserve sets them to a window plus a minute from the
 * charge).
 */
const RETIME_FUNCTION = `
local function retime(k, last, a)
  local sent = tonumber(ARGV[a])
  local now = tonumber(ARGV[a + 1])
  local KEEP_MS = ${BUDGET_KEEP_MS}
  for i = 1, (last - k + 1) / 2 do
    local runs, hash = KEYS[k + 2 * i - 2], KEYS[k + 2 * i - 1]
    local id, window_ms = ARGV[a + 2 * i], tonumber(ARGV[a + 2 * i + 1])
    local value = redis.call('HGET', hash, id)
    if value then
      local first, last_ms, rest = string.match(value, '^([^,]*),([^,]*),(.*)$')
      if tonumber(last_ms) < sent then
        redis.call('HSET', hash, id, first .. ',' .. string.format('%.17g', sent) .. ',' .. rest)
        redis.call('ZADD', runs, 'XX', sent, id)
        local keep = sent - now + window_ms + KEEP_MS
        if redis.call('PTTL', runs) < keep then redis.call('PEXPIRE', runs, keep) end
        if redis.call('PTTL', hash) < keep then redis.call('PEXPIRE', hash, keep) end
      end
    end
  end
end
`;

/** The writes of a batch, one after the other: `apply_writes(k, a, last)`, the first one's keys from KEYS[k] and
 * its kind at ARGV[a], up to ARGV[last]. Per write: its kind ("c" a reconcile, "t" a retime), its key count, its
 * argument count and its arguments (the functions above); its keys follow the previous write's in KEYS. */
const APPLY_WRITES_FUNCTION = `
${RECONCILE_FUNCTION}
${RETIME_FUNCTION}
local function apply_writes(k, a, last)
  while a <= last do
    local kind, key_count, argument_count = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    if kind == 'c' then reconcile(k, k + key_count - 1, a + 3) else retime(k, k + key_count - 1, a + 3) end
    k = k + key_count
    a = a + 3 + argument_count
  end
end
`;

/**
 * Batches of one process applied on one provider's slot, kept in a sorted set (`applied`, redis-keys.ts
 * onceAppliedKey) beside the batches' own markers: the newest ONCE_APPLIED_MAX markers (scored by their id, which
 * grows), for ONCE_APPLIED_KEEP_MS after the last. A marker lives a minute; a batch kept for a Cluster master's return
 * (redis-write-batches.ts) whose first send ran, its reply lost, was replayed after a longer outage once its marker
 * had ended, and applied twice. No batch of the process applies on that master while it is down, so the ones sent
 * just before are still among its newest when they are replayed. The marker stays: a burst of batches can push a
 * batch out of the set within the seconds its resends take. `first_time(marker, applied, marker_ms)`: false when
 * either says the batch ran.
 */
const FIRST_TIME_FUNCTION = `
local function first_time(marker, applied, marker_ms)
  if not redis.call('SET', marker, '1', 'NX', 'PX', marker_ms) then return false end
  if redis.call('ZSCORE', applied, marker) then return false end
  redis.call('ZADD', applied, tonumber(string.match(marker, ':(%d+)$')) or 0, marker)
  if redis.call('ZCARD', applied) > ${ONCE_APPLIED_MAX} then
    redis.call('ZREMRANGEBYRANK', applied, 0, -${ONCE_APPLIED_MAX + 1})
  end
  redis.call('PEXPIRE', applied, ${ONCE_APPLIED_KEEP_MS})
  return true
end
`;

/**
 * Reconciles and retimes of one provider's scopes (redis-write-batches.ts: those of one turn) as one script call. It
 * applies at most once: KEYS[1] is the batch's marker, set (NX, for marker_ms) before anything moves, KEYS[2] the
 * process's applied batches on that slot (FIRST_TIME_FUNCTION); either saying an earlier send of the same batch ran
 * (a timed-out one usually has), the script returns 0. ARGV[1]: marker_ms, then the writes (APPLY_WRITES_FUNCTION).
 */
export const WRITE_BATCH_LUA = `
${FIRST_TIME_FUNCTION}
if not first_time(KEYS[1], KEYS[2], ARGV[1]) then return 0 end
${APPLY_WRITES_FUNCTION}
apply_writes(3, 2, #ARGV)
return 1
`;

/**
 * A batch (as WRITE_BATCH_LUA's, at most once under its marker), then a reserve (RESERVE_LUA, answering as it does)
 * in the same call: the writes that wait for a reserve on their provider ride with it (redis-write-batches.ts).
 * ARGV[1]: the batch's key count (its marker and applied set first), ARGV[2]: its argument count (marker_ms first), then the batch's
 * arguments, then the reserve's; KEYS: the batch's, then the reserve's. The reserve's program runs as a function of
 * its own keys and arguments, unchanged.
 */
export const RESERVE_AFTER_WRITES_LUA = `
${FIRST_TIME_FUNCTION}
${APPLY_WRITES_FUNCTION}
local batch_keys, batch_arguments = tonumber(ARGV[1]), tonumber(ARGV[2])
if first_time(KEYS[1], KEYS[2], ARGV[3]) then apply_writes(3, 4, 2 + batch_arguments) end
local reserve_keys, reserve_arguments = {}, {}
for i = batch_keys + 1, #KEYS do reserve_keys[#reserve_keys + 1] = KEYS[i] end
for i = batch_arguments + 3, #ARGV do reserve_arguments[#reserve_arguments + 1] = ARGV[i] end
local function reserve(KEYS, ARGV)
${RESERVE_LUA}
end
return reserve(reserve_keys, reserve_arguments)
`;

/**
 * Stores what a provider's rate-limit headers said. KEYS[1]: learned hash. ARGV: now, then per window: field,
 * value ("remaining,resetAtMs,limit"), reset_at. The hash lives until its latest reset. Each window starts with
 * spentSince = the requests (or tokens) of the budget leases still live against the previous report (fields
 * "lease:<member>" -> "requests,tokens,leaseEndMs", see RESERVE_LUA): requests sent from them after this report
 * are not in it. Counting the whole lease, sent or not, errs on the side of sending less.
 */
export const LEARN_LUA = `
local now = tonumber(ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
local keep_ms = ttl > 0 and ttl or 0
local leased_requests, leased_tokens = 0, 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 6) == 'lease:' then
    local requests, tokens, lease_end = string.match(fields[i + 1], '^([^,]*),([^,]*),([^,]*)$')
    if (tonumber(lease_end) or 0) <= now then
      redis.call('HDEL', KEYS[1], fields[i])
    else
      leased_requests = leased_requests + (tonumber(requests) or 0)
      leased_tokens = leased_tokens + (tonumber(tokens) or 0)
    end
  end
end
for i = 2, #ARGV, 3 do
  local spent = string.sub(ARGV[i], 1, 7) == 'tokens:' and leased_tokens or leased_requests
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1] .. ',' .. string.format('%.17g', spent))
  keep_ms = math.max(keep_ms, tonumber(ARGV[i + 2]) - now)
end
if keep_ms > 0 then redis.call('PEXPIRE', KEYS[1], keep_ms) end
return 1
`;

/**
 * Shares a cooldown: stored unless Redis already holds one for the same key that ends later (a later end wins,
 * as in AvailabilityBook.importCooldowns), then published. One that ends at the same time is stored and published
 * again: it is usually this very cooldown sent again after its PUBLISH failed (refused, or timed out) once its SET
 * had run, and a retry that found its own SET published nothing, so no other replica ever heard it. KEYS[1]:
 * cooldown key. ARGV: cooldown JSON, until_ms, ttl_ms, channel, message. Returns 1 if stored and published.
 */
export const SHARE_COOLDOWN_LUA = `
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded.untilMs) ~= nil
    and tonumber(decoded.untilMs) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`;

/**
 * Stores one feature a deployment refused (redis-refused-features.ts) in the deployment's hash (KEYS[1]: feature ->
 * the lesson's JSON, `untilMs` and `atMs` in it) and keeps the hash bounded as the book is (limits/refused-features.ts
 * MAX_REFUSALS_PER_DEPLOYMENT): lessons ended by now, or unreadable, are removed, and past ARGV[4] feature lessons
 * the oldest go (the gateway's own, `x_gateway_*`, are kept apart: refused-features.ts isGatewayLesson). The hash then expires when its latest lesson ends, so a deployment nobody refuses any more leaves nothing
 * behind. ARGV: feature, lesson JSON, now_ms, max lessons. Returns how many lessons the hash keeps.
 * A lesson about a size stored there that still holds keeps the lower start of the two, with the later end, as the
 * book's `adopt` does: two replicas refusing at once each wrote their own, and the last write (8 entries or more) hid
 * the other's (5) from every replica that loaded the hash later.
 */
export const SHARE_REFUSAL_LUA = `
local now = tonumber(ARGV[3])
local lesson = ARGV[2]
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored then
  local ok_known, known = pcall(cjson.decode, stored)
  local ok_new, incoming = pcall(cjson.decode, lesson)
  if ok_known and ok_new and type(known) == 'table' and type(incoming) == 'table' then
    local known_until = tonumber(known.untilMs)
    local known_start = tonumber(known.minEntries)
    local start = tonumber(incoming.minEntries)
    local new_until = tonumber(incoming.untilMs)
    if known_until and new_until and known_start and start and known_until > now
      and (known_start < start or known_until > new_until) then
      local kept = incoming
      if known_until > new_until then kept = known end
      kept.minEntries = math.min(known_start, start)
      lesson = cjson.encode(kept)
    end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], lesson)
local max = tonumber(ARGV[4])
local fields = redis.call('HGETALL', KEYS[1])
local kept = {}
local own = {}
for i = 1, #fields, 2 do
  local ok, lesson = pcall(cjson.decode, fields[i + 1])
  local until_ms = nil
  if ok and type(lesson) == 'table' then until_ms = tonumber(lesson.untilMs) end
  if until_ms == nil or until_ms <= now then
    redis.call('HDEL', KEYS[1], fields[i])
  elseif string.sub(fields[i], 1, 10) == 'x_gateway_' then
    own[#own + 1] = until_ms
  else
    kept[#kept + 1] = { fields[i], tonumber(lesson.atMs) or 0, until_ms }
  end
end
local first = 1
if #kept > max then
  table.sort(kept, function(a, b) return a[2] < b[2] end)
  first = #kept - max + 1
  for i = 1, first - 1 do redis.call('HDEL', KEYS[1], kept[i][1]) end
end
local latest = now
for i = first, #kept do latest = math.max(latest, kept[i][3]) end
for i = 1, #own do latest = math.max(latest, own[i]) end
if latest > now then redis.call('PEXPIRE', KEYS[1], math.ceil(latest - now)) end
return #kept - first + 1 + #own
`;

/**
 * A reload's forget of a scope's stated limits (redis-learned-facts.ts `forget`), or of a deployment's refused
 * features (redis-refused-features.ts, its marker redis-deployment-forgets.ts): sets the forget marker
 * (KEYS[1], to ARGV[1] for ARGV[2] ms) and deletes its stored limits (KEYS[2..]), as one step, at most once per
 * forget. Apart, a marker SET that failed after the delete left the forget to be sent again, and that delete dropped
 * a limit of the new key stored in between; a send that timed out after it ran (the usual timeout) did the same. A
 * marker that already names this forget means an earlier send ran: nothing is deleted again, and it returns 0.
 */
export const FORGET_LIMITS_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
for i = 2, #KEYS do redis.call('UNLINK', KEYS[i]) end
return 1
`;

/**
 * Deletes a calibration's field (KEYS[1] the hash, ARGV[1] the deployment) only while it still holds ARGV[2], what
 * this process's flush wrote there (redis-calibration.ts `dropWrittenBack`): evidence stored since by another
 * replica (of what the name points at now) is kept. Returns 1 when it deleted.
 */
export const DELETE_FIELD_IF_LUA = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
`;

/**
 * A reset's marker stored late (redis-shared-reset.ts `setOverKnown`): SET KEYS[1] to ARGV[1] unless it holds a
 * value other than that one and those that follow it: 1 if set (or held).
 */
export const SET_OVER_LUA = `local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then
  local isKnown = false
  for index = 2, #ARGV do
    if ARGV[index] == current then isKnown = true end
  end
  if not isKnown then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1`;
