-- retry.lua: move a job from the dead letter set back to waiting, with its attempts reset.
-- KEYS[1] job record   KEYS[2] failed set   KEYS[3] waiting set   KEYS[4] events stream
-- KEYS[5] wake marker
-- ARGV[1] id   ARGV[2] events max length
-- Returns the new version, or an error reply 'STATE ...' when the job is not failed.
local jobKey, failedKey, waitKey, eventsKey, markerKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id = ARGV[1]
local state = redis.call('HGET', jobKey, 'state')
if not state then return redis.error_reply('NOTFOUND job does not exist') end
if state ~= 'failed' then return redis.error_reply('STATE job is ' .. state .. ', not failed') end
redis.call('ZREM', failedKey, id)
redis.call('HSET', jobKey, 'attempts', 0, 'stalls', 0, 'progress', 0, 'finishedAt', 0)
toWaiting(jobKey, waitKey, id)
local version = bump(jobKey)
emit(eventsKey, ARGV[2], id, 'waiting', version, 'reason', 'retried')
wake(markerKey)
return version
