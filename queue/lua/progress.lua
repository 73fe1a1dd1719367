-- progress.lua: record a leased job's progress.
-- KEYS[1] job record   KEYS[2] events stream
-- ARGV[1] id   ARGV[2] lease token   ARGV[3] progress 0-100   ARGV[4] message   ARGV[5] events max length
-- Returns the new version, or an error reply 'LEASE ...' for a stale token.
local jobKey, eventsKey = KEYS[1], KEYS[2]
local f = redis.call('HMGET', jobKey, 'state', 'token')
if f[1] ~= 'active' or f[2] ~= ARGV[2] then
  return redis.error_reply('LEASE job is not leased with this token')
end
redis.call('HSET', jobKey, 'progress', ARGV[3], 'progressMessage', ARGV[4])
local version = bump(jobKey)
emit(eventsKey, ARGV[5], ARGV[1], 'progress', version, 'progress', ARGV[3], 'message', ARGV[4])
return version
