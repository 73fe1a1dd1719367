-- lease.lua: promote due delayed jobs, then lease up to N waiting jobs to a worker.
-- KEYS[1] waiting set   KEYS[2] delayed set   KEYS[3] active set   KEYS[4] meta hash
-- KEYS[5] rate limiter (sorted set of start times)   KEYS[6] events stream   KEYS[7] wake marker
-- KEYS[8] stats hash
-- ARGV[1] job key prefix   ARGV[2] now ms ('': Redis' clock)   ARGV[3] lease ms   ARGV[4] worker id
-- ARGV[5] count   ARGV[6] events max length   ARGV[7] token nonce (random, new for every call)
-- Returns {retryAt, now, job1, job2, ...}: now is the time the script worked at (ms); each job
-- its record as HGETALL gave it before the lease (a flat field/value list) with the new version in
-- place; the caller sets the other fields the lease wrote (state active, token = nonce-i for the
-- call's i-th job, lastToken = token, worker, processedAt = now, leaseUntil = now + lease ms,
-- dueAt 0), which it knows. lastToken outlives the lease (token is cleared when it ends): while it
-- is a holder's token, no lease has been taken since, so a holder whose Complete or Fail reply was
-- lost can tell from the record whether its call went through. A token is not the record's version: after Redis rolls back (a restart from an older RDB
-- or AOF, a failover to a replica that had not seen the latest writes) a version can be handed out
-- again, and two holders of one token would both pass the fence. The caller's nonce makes every
-- lease's token unique. retryAt (ms) is when
-- to try again if fewer jobs than asked were leased: the next delayed job's due time or the end
-- of a rate-limit window; 0 when only a new job would help; -1 paused.
--
-- Per leased job it issues three commands (HGETALL, HSET, XADD); the pops, the active set and the
-- limiter are written once per batch. Every job still gets its own version bump and event. The
-- stats (a job's first start: its pickup time; a job held back by the rate limit) are written
-- once per call.
local waitKey, delayedKey, activeKey, metaKey, limiterKey, eventsKey, markerKey =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local prefix, now, leaseMs, worker, count, maxLen, nonce =
  ARGV[1], nowMs(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]

-- Promote due delayed jobs, a bounded batch per call.
promoteDue(delayedKey, waitKey, eventsKey, prefix, now, maxLen, 1000)

local meta = redis.call('HMGET', metaKey, 'paused', 'limitedUntil', 'rateMax', 'rateDuration')
if meta[1] == '1' then
  return {-1, now}
end
local limitedUntil = tonumber(meta[2] or '0') or 0
if limitedUntil > now then
  return {limitedUntil, now}
end
local rateMax, rateDuration = tonumber(meta[3] or '0') or 0, tonumber(meta[4] or '0') or 0

-- allowed: starts the rate-limit window still admits. The script runs atomically at one `now`,
-- so counting the window once and then decrementing is the same as counting before each start.
local allowed = count
if rateMax > 0 then
  redis.call('ZREMRANGEBYSCORE', limiterKey, '-inf', now - rateDuration)
  allowed = rateMax - redis.call('ZCARD', limiterKey)
end

local result = {0, now}
local limited, emptied = false, false
local leaseUntil = now + leaseMs
local activeArgs, starts, stats = {}, {}, statsNew()
local pops = count -- as before, a vanished record uses up one of the count pops
while pops > 0 and not limited and not emptied do
  local n = pops
  -- Under a rate limit pop at most one job more than the window admits: that one, if it is
  -- reached, is necessarily the batch's last, and it goes to the delayed set.
  if rateMax > 0 and math.max(allowed, 0) + 1 < n then n = math.max(allowed, 0) + 1 end
  local popped = redis.call('ZPOPMIN', waitKey, n)
  if #popped < 2 * n then emptied = true end
  pops = pops - #popped / 2
  for i = 1, #popped, 2 do
    local id = popped[i]
    local jobKey = prefix .. id
    local f = redis.call('HGETALL', jobKey)
    local vi = 0 -- index of the version's value in f; 0: no record (every record has a version)
    local createdAt, started = nil, false
    for j = 1, #f, 2 do
      local field = f[j]
      if field == 'version' then vi = j + 1
      elseif field == 'createdAt' then createdAt = tonumber(f[j + 1])
      elseif field == 'processedAt' then started = true end
    end
    if vi > 0 then
      local version = tonumber(f[vi]) + 1
      if rateMax > 0 and allowed <= 0 then
        -- Over the limit: the job is not started. It waits, delayed and uncounted, for the
        -- window's oldest start to leave the window.
        if #starts > 0 then
          callChunked('ZADD', limiterKey, starts, 1000)
          redis.call('PEXPIRE', limiterKey, rateDuration)
          starts = {}
        end
        local oldest = redis.call('ZRANGE', limiterKey, 0, 0, 'WITHSCORES')
        local freeAt = tonumber(oldest[2]) + rateDuration
        redis.call('HSET', jobKey, 'state', 'delayed', 'dueAt', freeAt, 'delayReason', 'rate-limited',
          'version', version)
        redis.call('ZADD', delayedKey, freeAt, id)
        emit(eventsKey, maxLen, id, 'delayed', version, 'dueAt', freeAt, 'reason', 'rate-limited')
        statsInc(stats, 'ratelimited')
        result[1] = freeAt
        limited = true
        break
      end
      allowed = allowed - 1
      if rateMax > 0 then
        starts[#starts + 1] = now
        starts[#starts + 1] = id .. ':' .. now
      end
      local token = nonce .. '-' .. (#result - 1) -- this job's place in the reply
      redis.call('HSET', jobKey, 'version', version, 'state', 'active', 'token', token, 'lastToken', token,
        'worker', worker, 'processedAt', now, 'leaseUntil', leaseUntil, 'dueAt', 0)
      activeArgs[#activeArgs + 1] = leaseUntil
      activeArgs[#activeArgs + 1] = id
      emit(eventsKey, maxLen, id, 'active', version, 'worker', worker)
      if not started and createdAt then statsObserve(stats, 'pickup', now - createdAt) end
      f[vi] = version
      result[#result + 1] = f
    end
  end
end
callChunked('ZADD', activeKey, activeArgs, 1000)
statsFlush(KEYS[8], stats)
if #starts > 0 then
  callChunked('ZADD', limiterKey, starts, 1000)
  redis.call('PEXPIRE', limiterKey, rateDuration)
end

if #result - 2 < count and result[1] == 0 then
  local first = redis.call('ZRANGE', delayedKey, 0, 0, 'WITHSCORES')
  if first[2] then result[1] = tonumber(first[2]) end
end
-- More jobs wait than this worker took: let another blocked worker wake up for them. Not when
-- the rate limit stopped us: the others would only find the same limit. A short pop proved the
-- set empty.
if not limited and not emptied and redis.call('ZCARD', waitKey) > 0 then
  wake(markerKey)
end
return result
