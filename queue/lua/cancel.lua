-- cancel.lua: cancel a job that has not finished; a worker holding it learns it at its next
-- heartbeat. The record stays, for inspection, until ARGV[4] ms from now.
-- KEYS[1] job record   KEYS[2] waiting set   KEYS[3] delayed set   KEYS[4] active set
-- KEYS[5] events stream   KEYS[6] stats hash
-- ARGV[1] id   ARGV[2] now ms ('': Redis' clock)   ARGV[3] events max length   ARGV[4] keep ms
-- Returns {state, version}: the state after the call ('cancelled', or the finished state it
-- already had, unchanged).
local jobKey, eventsKey = KEYS[1], KEYS[5]
local id = ARGV[1]
local state = redis.call('HGET', jobKey, 'state')
if not state then return redis.error_reply('NOTFOUND job does not exist') end
if state == 'completed' or state == 'failed' or state == 'cancelled' then
  return {state, num(jobKey, 'version')}
end
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
redis.call('ZREM', KEYS[4], id)
redis.call('HSET', jobKey, 'state', 'cancelled', 'finishedAt', nowMs(ARGV[2]), 'token', '')
redis.call('PEXPIRE', jobKey, ARGV[4])
redis.call('HINCRBY', KEYS[6], 'cancelled', 1)
local version = bump(jobKey)
emit(eventsKey, ARGV[3], id, 'cancelled', version)
return {'cancelled', version}
