-- retry.lua: move a job from the dead letter set back to waiting, with its attempts reset, at
-- most once per retry token: the token is recorded in the record by the same script, so a caller
-- that fails after the retry (a lost reply, a status write refused) cannot act on it twice.
-- KEYS[1] job record   KEYS[2] failed set   KEYS[3] waiting set   KEYS[4] events stream
-- KEYS[5] wake marker   KEYS[6] stats hash
-- ARGV[1] id   ARGV[2] events max length   ARGV[3] retry token ('' for none)
-- Returns the new version, or an error reply 'USED ...' when the token was acted on already, or
-- 'STATE ...' when the job is not failed.
local jobKey, failedKey, waitKey, eventsKey, markerKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, token = ARGV[1], ARGV[3]
local f = redis.call('HMGET', jobKey, 'state', 'retryToken')
local state = f[1]
if not state then return redis.error_reply('NOTFOUND job does not exist') end
if token ~= '' and f[2] == token then return redis.error_reply('USED retry token already acted on') end
if state ~= 'failed' then return redis.error_reply('STATE job is ' .. state .. ', not failed') end
redis.call('ZREM', failedKey, id)
redis.call('HSET', jobKey, 'attempts', 0, 'stalls', 0, 'progress', 0, 'finishedAt', 0)
if token ~= '' then redis.call('HSET', jobKey, 'retryToken', token) end
toWaiting(jobKey, waitKey, id)
local version = bump(jobKey)
emit(eventsKey, ARGV[2], id, 'waiting', version, 'reason', 'retried')
wake(markerKey)
redis.call('HINCRBY', KEYS[6], 'retried:manual', 1)
return version
