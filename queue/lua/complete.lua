-- complete.lua: finish a leased job successfully.
-- KEYS[1] job record   KEYS[2] active set   KEYS[3] completed set   KEYS[4] events stream
-- ARGV[1] id   ARGV[2] lease token   ARGV[3] result   ARGV[4] now ms   ARGV[5] events max length
-- Returns the new version, or an error reply 'LEASE ...' for a stale token (the job was taken
-- over, cancelled or removed: this completion does not count).
local jobKey, activeKey, completedKey, eventsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, now = ARGV[1], tonumber(ARGV[4])
local f = redis.call('HMGET', jobKey, 'state', 'token')
if f[1] ~= 'active' or f[2] ~= ARGV[2] then
  return redis.error_reply('LEASE job is not leased with this token')
end
redis.call('ZREM', activeKey, id)
redis.call('ZADD', completedKey, now, id)
redis.call('HINCRBY', jobKey, 'attempts', 1)
redis.call('HSET', jobKey, 'state', 'completed', 'progress', 100, 'finishedAt', now,
  'result', ARGV[3], 'token', '', 'leaseUntil', 0)
local version = bump(jobKey)
emit(eventsKey, ARGV[5], id, 'completed', version)
return version
