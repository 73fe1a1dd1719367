-- reclaim.lua: return jobs whose lease expired (their worker died) to waiting, counting the
-- attempt; a job out of attempts, or stalled more than allowed, fails.
-- KEYS[1] active set   KEYS[2] waiting set   KEYS[3] failed set   KEYS[4] events stream
-- KEYS[5] wake marker   KEYS[6] stats hash
-- ARGV[1] job key prefix   ARGV[2] now ms ('': Redis' clock)   ARGV[3] max stalls   ARGV[4] batch size
-- ARGV[5] events max length
-- Returns a flat list: id, new state, version, ...
local activeKey, waitKey, failedKey, eventsKey, markerKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local prefix, now, maxStalls, maxLen = ARGV[1], nowMs(ARGV[2]), tonumber(ARGV[3]), ARGV[5]
local expired = redis.call('ZRANGEBYSCORE', activeKey, '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
local out, stats = {}, statsNew()
for _, id in ipairs(expired) do
  local jobKey = prefix .. id
  redis.call('ZREM', activeKey, id)
  local rec = redis.call('HMGET', jobKey, 'version', 'processedAt')
  if rec[1] then -- the record exists (every record has a version)
    local stalls = redis.call('HINCRBY', jobKey, 'stalls', 1)
    local attempts = redis.call('HINCRBY', jobKey, 'attempts', 1)
    redis.call('HSET', jobKey, 'token', '', 'leaseUntil', 0)
    local state
    if stalls > maxStalls or attempts >= maxAttempts(jobKey) then
      state = 'failed'
      redis.call('HSET', jobKey, 'state', 'failed', 'finishedAt', now,
        'error', 'job stalled: its worker stopped renewing the lease')
      redis.call('ZADD', failedKey, now, id)
      statsInc(stats, 'failed:stalled')
      statsObserve(stats, 'run', now - (tonumber(rec[2]) or now))
    else
      statsInc(stats, 'retried:stalled')
      state = 'waiting'
      toWaiting(jobKey, waitKey, id)
      wake(markerKey)
    end
    local version = bump(jobKey)
    emit(eventsKey, maxLen, id, state, version, 'reason', 'stalled')
    out[#out + 1] = id
    out[#out + 1] = state
    out[#out + 1] = version
  end
end
statsFlush(KEYS[6], stats)
return out
