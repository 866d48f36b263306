// The Lua scripts of the Files and Batch APIs' rows in Redis (redis-batch-rows.ts: the keys they name, and why each
// write is one script). Every script declares its keys (one hash tag, `{batches}`: a Redis Cluster keeps them in one
// slot) or builds them from a declared key of the same tag.

/** Lines of an earlier version's results list moved per script run (IN_LINE_ORDER_LUA). */
const LINES_PER_CONVERSION = 500;

/**
 * Lua: a batch's results kept by an earlier version (a list, in the order the lines finished) become the sorted set
 * by line index, LINES_PER_CONVERSION lines per run (the caller runs it again while it answers 0), so that a
 * 50,000-line batch of 24 KB answers is never one script: in one, Redis served no other command for the seconds its
 * 1.2 GB were decoded, and held a second copy of them in Lua meanwhile. Each run adds its lines to KEYS[2] (same
 * tag: the same Cluster slot) before it trims them off the list, so a run that fails loses none (the next adds them
 * again, the same members); once the list is gone the sorted set takes its name. 1 when KEYS[1] is the sorted set.
 * KEYS: results, converting.
 */
export const IN_LINE_ORDER_LUA = `
if redis.call('TYPE', KEYS[1]).ok == 'list' then
  local lines = redis.call('LRANGE', KEYS[1], 0, ${LINES_PER_CONVERSION - 1})
  for _, line in ipairs(lines) do redis.call('ZADD', KEYS[2], cjson.decode(line).index, line) end
  redis.call('LTRIM', KEYS[1], #lines, -1)
  if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('ZUNIONSTORE', KEYS[1], 2, KEYS[1], KEYS[2])
    redis.call('DEL', KEYS[2])
  else
    redis.call('RENAME', KEYS[2], KEYS[1])
  end
end
return 1
`;

/**
 * ARGV: index, result JSON. KEYS: results, done, converting. 1 when added, or already kept (the same JSON: this write
 * again, after its first landed but its answer was lost); 0 when the line has another result; 2, with nothing
 * written, while an earlier version's list is not yet the sorted set (IN_LINE_ORDER_LUA first, then again).
 *
 * A mark `1` with no result under its index is no result: an earlier version's write (HSETNX the mark, then RPUSH)
 * that reached a results key this version had made the sorted set (a rolling upgrade) failed with WRONGTYPE after its
 * mark was set (a script's writes before an error stay), and the line, in neither file, was refused for good by every
 * later write. It is written now (docs/protocols.md "Batches", the upgrade rule).
 */
export const PUT_RESULT_LUA = `
if redis.call('TYPE', KEYS[1]).ok == 'list' or redis.call('EXISTS', KEYS[3]) == 1 then return 2 end
local digest = redis.sha1hex(ARGV[2])
local kept = redis.call('HGET', KEYS[2], ARGV[1])
if kept then
  if kept == digest then return 1 end
  if kept ~= '1' or redis.call('ZCOUNT', KEYS[1], ARGV[1], ARGV[1]) > 0 then return 0 end
end
redis.call('HSET', KEYS[2], ARGV[1], digest)
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
return 1
`;

/** KEYS: batch-rows, runnable. ARGV: id, expected row JSON, new row JSON, 1 when runnable. 1 when written. */
export const REPLACE_BATCH_LUA = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] == '1' then redis.call('SADD', KEYS[2], ARGV[1]) else redis.call('SREM', KEYS[2], ARGV[1]) end
return 1
`;

/** KEYS: lease. ARGV: holder, ttl ms. Taken when free, renewed when the holder's; 0 when another holds it. */
export const TAKE_LEASE_LUA = `
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;

/** KEYS: a lease or the lock. ARGV: holder. Deleted only when still the holder's (a lapsed one may be another's). */
export const DROP_IF_HELD_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
