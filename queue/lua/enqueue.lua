-- enqueue.lua: add a job, or return the one already there.
-- KEYS[1] job record     KEYS[2] waiting set   KEYS[3] delayed set   KEYS[4] meta hash
-- KEYS[5] events stream  KEYS[6] wake marker   KEYS[7..] the other state sets (active, completed,
--                                                        failed), cleared when a record is replaced
-- ARGV[1] id   ARGV[2] owner uid   ARGV[3] payload   ARGV[4] payload schema version
-- ARGV[5] priority   ARGV[6] delay ms   ARGV[7] attempts allowed   ARGV[8] backoff type
-- ARGV[9] backoff delay ms   ARGV[10] backoff multiplier   ARGV[11] backoff jitter percent
-- ARGV[12] timeout ms   ARGV[13] now ms   ARGV[14] events max length
-- ARGV[15] version floor: the new record's version starts above it
-- Returns {outcome, version, state}: outcome is 'created', 'exists' (same id and uid: nothing
-- changed) or 'conflict' (same id, other uid, old record still live).
local jobKey, waitKey, delayedKey, metaKey, eventsKey, markerKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, uid = ARGV[1], ARGV[2]
local now, maxLen = tonumber(ARGV[13]), ARGV[14]

local old = redis.call('HMGET', jobKey, 'uid', 'state', 'version')
local version = 0
if old[1] then
  if old[1] == uid then
    return {'exists', tonumber(old[3]), old[2]}
  end
  if old[2] ~= 'completed' and old[2] ~= 'failed' and old[2] ~= 'cancelled' then
    return {'conflict', tonumber(old[3]), old[2]}
  end
  -- A recreated CR: the finished record of the old one gives way; versions keep rising.
  version = tonumber(old[3])
  for i = 2, #KEYS do
    if i ~= 4 and i ~= 5 and i ~= 6 then redis.call('ZREM', KEYS[i], id) end
  end
  redis.call('DEL', jobKey)
end

local floor = tonumber(ARGV[15]) or 0
if floor > version then version = floor end
local seq = redis.call('HINCRBY', metaKey, 'seq', 1)
local delay = tonumber(ARGV[6])
local state = 'waiting'
if delay > 0 then state = 'delayed' end
version = version + 1
redis.call('HSET', jobKey, 'id', id, 'uid', uid, 'payload', ARGV[3], 'pv', ARGV[4],
  'priority', ARGV[5], 'seq', seq, 'attempts', 0, 'maxAttempts', ARGV[7], 'stalls', 0,
  'backoffType', ARGV[8], 'backoffDelay', ARGV[9], 'backoffMult', ARGV[10], 'backoffJitter', ARGV[11],
  'timeout', ARGV[12], 'state', state, 'progress', 0, 'createdAt', now, 'version', version)
if delay > 0 then
  redis.call('HSET', jobKey, 'dueAt', now + delay, 'delayReason', 'delay')
  redis.call('ZADD', delayedKey, now + delay, id)
  emit(eventsKey, maxLen, id, 'delayed', version, 'dueAt', now + delay)
  wake(markerKey) -- a blocked worker recomputes how long to sleep
else
  redis.call('ZADD', waitKey, waitScore(ARGV[5], seq), id)
  emit(eventsKey, maxLen, id, 'waiting', version)
  wake(markerKey)
end
return {'created', version, state}
