-- fail.lua: end a leased job's attempt with an error.
-- KEYS[1] job record   KEYS[2] active set   KEYS[3] delayed set   KEYS[4] failed set
-- KEYS[5] meta hash   KEYS[6] events stream   KEYS[7] wake marker   KEYS[8] stats hash
-- ARGV[1] id   ARGV[2] lease token   ARGV[3] error message   ARGV[4] now ms ('': Redis' clock)
-- ARGV[5] kind: 'retry' (counted; backoff, or the dead letter set after the last attempt),
--         'permanent' (counted; straight to the dead letter set), 'ratelimited' (not counted;
--         back after ARGV[6] ms, and the queue leases nothing until then)
-- ARGV[6] retry-after ms (ratelimited)   ARGV[7] random fraction [0,1) for jitter
-- ARGV[8] events max length   ARGV[9] '1' when the attempt ran out of the job's timeout (the
--         stats count it as a timeout instead of an error)
-- Returns {state, version, dueAt}, or an error reply 'LEASE ...' for a stale token.
local jobKey, activeKey, delayedKey, failedKey, metaKey, eventsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, message, now, kind, maxLen = ARGV[1], ARGV[3], nowMs(ARGV[4]), ARGV[5], ARGV[8]
local statsKey, timedOut = KEYS[8], ARGV[9] == '1'
local f = redis.call('HMGET', jobKey, 'state', 'token', 'processedAt')
if f[1] ~= 'active' or f[2] ~= ARGV[2] then
  return redis.error_reply('LEASE job is not leased with this token')
end
redis.call('ZREM', activeKey, id)
redis.call('HSET', jobKey, 'error', message, 'token', '', 'leaseUntil', 0)

if kind == 'ratelimited' then
  local dueAt = now + tonumber(ARGV[6])
  redis.call('HSET', jobKey, 'state', 'delayed', 'dueAt', dueAt, 'delayReason', 'rate-limited')
  redis.call('ZADD', delayedKey, dueAt, id)
  local limitedUntil = tonumber(redis.call('HGET', metaKey, 'limitedUntil') or '0') or 0
  if dueAt > limitedUntil then redis.call('HSET', metaKey, 'limitedUntil', dueAt) end
  redis.call('HINCRBY', statsKey, 'ratelimited', 1)
  local version = bump(jobKey)
  emit(eventsKey, maxLen, id, 'delayed', version, 'dueAt', dueAt, 'reason', 'rate-limited')
  return {'delayed', version, dueAt}
end

local attempts = redis.call('HINCRBY', jobKey, 'attempts', 1)
if kind == 'retry' and attempts < maxAttempts(jobKey) then
  local b = redis.call('HMGET', jobKey, 'backoffType', 'backoffDelay', 'backoffMult', 'backoffJitter')
  local delay = tonumber(b[2]) or 0
  if b[1] == 'exponential' then
    delay = delay * math.pow(tonumber(b[3]) or 1, attempts - 1)
  end
  delay = math.floor(delay - delay * (tonumber(b[4]) or 0) / 100 * tonumber(ARGV[7]))
  local dueAt = now + delay
  redis.call('HSET', jobKey, 'state', 'delayed', 'dueAt', dueAt, 'delayReason', 'retry')
  redis.call('ZADD', delayedKey, dueAt, id)
  redis.call('HINCRBY', statsKey, timedOut and 'retried:timeout' or 'retried:error', 1)
  local version = bump(jobKey)
  emit(eventsKey, maxLen, id, 'delayed', version, 'dueAt', dueAt, 'reason', 'retry', 'error', message)
  wake(KEYS[7]) -- a blocked worker recomputes how long to sleep
  return {'delayed', version, dueAt}
end

redis.call('HSET', jobKey, 'state', 'failed', 'finishedAt', now)
redis.call('ZADD', failedKey, now, id)
local reason = 'exhausted'
if kind == 'permanent' then reason = 'permanent' elseif timedOut then reason = 'timeout' end
local stats = statsNew()
statsInc(stats, 'failed:' .. reason)
statsObserve(stats, 'run', now - (tonumber(f[3]) or now))
statsFlush(statsKey, stats)
local version = bump(jobKey)
emit(eventsKey, maxLen, id, 'failed', version, 'error', message)
return {'failed', version, 0}
