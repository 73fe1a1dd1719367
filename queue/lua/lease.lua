-- lease.lua: promote due delayed jobs, then lease up to N waiting jobs to a worker.
-- KEYS[1] waiting set   KEYS[2] delayed set   KEYS[3] active set   KEYS[4] meta hash
-- KEYS[5] rate limiter (sorted set of start times)   KEYS[6] events stream   KEYS[7] wake marker
-- ARGV[1] job key prefix   ARGV[2] now ms   ARGV[3] lease ms   ARGV[4] worker id   ARGV[5] count
-- ARGV[6] events max length
-- Returns {retryAt, job1, job2, ...}: each job a flat field/value list of its record after the
-- lease. retryAt (ms) is when to try again if fewer jobs than asked were leased: the next delayed
-- job's due time or the end of a rate-limit window; 0 when only a new job would help; -1 paused.
local waitKey, delayedKey, activeKey, metaKey, limiterKey, eventsKey, markerKey =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local prefix, now, leaseMs, worker, count, maxLen =
  ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), ARGV[6]

-- Promote due delayed jobs, a bounded batch per call.
local due = redis.call('ZRANGEBYSCORE', delayedKey, '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  local jobKey = prefix .. id
  redis.call('ZREM', delayedKey, id)
  if redis.call('EXISTS', jobKey) == 1 then
    toWaiting(jobKey, waitKey, id)
    emit(eventsKey, maxLen, id, 'waiting', bump(jobKey))
  end
end

local meta = redis.call('HMGET', metaKey, 'paused', 'limitedUntil', 'rateMax', 'rateDuration')
if meta[1] == '1' then
  return {-1}
end
local nextDelayed = function()
  local first = redis.call('ZRANGE', delayedKey, 0, 0, 'WITHSCORES')
  if first[2] then return tonumber(first[2]) end
  return 0
end
local limitedUntil = tonumber(meta[2] or '0') or 0
if limitedUntil > now then
  return {limitedUntil}
end
local rateMax, rateDuration = tonumber(meta[3] or '0') or 0, tonumber(meta[4] or '0') or 0

local result = {0}
local limited = false
for _ = 1, count do
  local popped = redis.call('ZPOPMIN', waitKey)
  if not popped[1] then break end
  local id = popped[1]
  local jobKey = prefix .. id
  if redis.call('EXISTS', jobKey) == 1 then
    if rateMax > 0 then
      redis.call('ZREMRANGEBYSCORE', limiterKey, '-inf', now - rateDuration)
      if redis.call('ZCARD', limiterKey) >= rateMax then
        -- Over the limit: the job is not started. It waits, delayed and uncounted, for the
        -- window's oldest start to leave the window.
        local oldest = redis.call('ZRANGE', limiterKey, 0, 0, 'WITHSCORES')
        local freeAt = tonumber(oldest[2]) + rateDuration
        redis.call('HSET', jobKey, 'state', 'delayed', 'dueAt', freeAt, 'delayReason', 'rate-limited')
        redis.call('ZADD', delayedKey, freeAt, id)
        emit(eventsKey, maxLen, id, 'delayed', bump(jobKey), 'dueAt', freeAt, 'reason', 'rate-limited')
        result[1] = freeAt
        limited = true
        break
      end
      redis.call('ZADD', limiterKey, now, id .. ':' .. now)
      redis.call('PEXPIRE', limiterKey, rateDuration)
    end
    local version = bump(jobKey)
    local leaseUntil = now + leaseMs
    redis.call('HSET', jobKey, 'state', 'active', 'token', version, 'worker', worker,
      'processedAt', now, 'leaseUntil', leaseUntil, 'dueAt', 0)
    redis.call('ZADD', activeKey, leaseUntil, id)
    emit(eventsKey, maxLen, id, 'active', version, 'worker', worker)
    result[#result + 1] = redis.call('HGETALL', jobKey)
  end
end

if #result - 1 < count and result[1] == 0 then
  result[1] = nextDelayed()
end
-- More jobs wait than this worker took: let another blocked worker wake up for them. Not when
-- the rate limit stopped us: the others would only find the same limit.
if not limited and redis.call('ZCARD', waitKey) > 0 then
  wake(markerKey)
end
return result
