-- complete.lua: finish leased jobs successfully, each fenced by its own lease token.
-- KEYS[1] active set   KEYS[2] completed set   KEYS[3] events stream   KEYS[4] meta hash
-- KEYS[5] stats hash   KEYS[5+i] job i's record (i = 1..n)
-- ARGV[1] now ms ('': Redis' clock)   ARGV[2] events max length
-- ARGV[3i] job i's id   ARGV[3i+1] its lease token   ARGV[3i+2] its result
-- Returns one integer per job: its new version, or 0 when its token is stale (the job was taken
-- over, cancelled or removed: that completion does not count; the others still do).
--
-- When the queue's meta hash says removeOnComplete = '1' (Queue.SetRemoveOnComplete), a
-- completed job's record is deleted instead of kept in the completed set; its 'completed' event
-- still carries its new version. Per job it issues three commands (HMGET, then HSET or DEL,
-- XADD); the active and completed sets and the stats are written once per call. Every job gets
-- its own version bump and its own 'completed' event, and counts once in the stats (completed,
-- and its last attempt's run time).
local activeKey, completedKey, eventsKey = KEYS[1], KEYS[2], KEYS[3]
local now, maxLen = nowMs(ARGV[1]), ARGV[2]
local remove = redis.call('HGET', KEYS[4], 'removeOnComplete') == '1'
local out, done, finished, stats = {}, {}, {}, statsNew()
for i = 1, #KEYS - 5 do
  local jobKey, id, token = KEYS[5 + i], ARGV[3 * i], ARGV[3 * i + 1]
  local f = redis.call('HMGET', jobKey, 'state', 'token', 'version', 'attempts', 'processedAt')
  if f[1] ~= 'active' or f[2] ~= token then
    out[i] = 0
  else
    local version = tonumber(f[3]) + 1
    if remove then
      redis.call('DEL', jobKey)
    else
      redis.call('HSET', jobKey, 'state', 'completed', 'progress', 100, 'finishedAt', now,
        'result', ARGV[3 * i + 2], 'token', '', 'leaseUntil', 0,
        'attempts', (tonumber(f[4] or '0') or 0) + 1, 'version', version)
      finished[#finished + 1] = now
      finished[#finished + 1] = id
    end
    done[#done + 1] = id
    statsInc(stats, 'completed')
    statsObserve(stats, 'run', now - (tonumber(f[5]) or now))
    emit(eventsKey, maxLen, id, 'completed', version)
    out[i] = version
  end
end
callChunked('ZREM', activeKey, done, 1000)
callChunked('ZADD', completedKey, finished, 1000)
statsFlush(KEYS[5], stats)
return out
