-- release.lua: hand a leased job back to waiting without counting the attempt (a worker
-- shutting down before the job finished).
-- KEYS[1] job record   KEYS[2] active set   KEYS[3] waiting set   KEYS[4] events stream
-- KEYS[5] wake marker
-- ARGV[1] id   ARGV[2] lease token   ARGV[3] events max length
-- Returns the new version, or an error reply 'LEASE ...' for a stale token.
local jobKey, activeKey, waitKey, eventsKey, markerKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local f = redis.call('HMGET', jobKey, 'state', 'token')
if f[1] ~= 'active' or f[2] ~= ARGV[2] then
  return redis.error_reply('LEASE job is not leased with this token')
end
redis.call('ZREM', activeKey, ARGV[1])
redis.call('HSET', jobKey, 'token', '', 'leaseUntil', 0, 'worker', '')
toWaiting(jobKey, waitKey, ARGV[1])
local version = bump(jobKey)
emit(eventsKey, ARGV[3], ARGV[1], 'waiting', version, 'reason', 'released')
wake(markerKey)
return version
