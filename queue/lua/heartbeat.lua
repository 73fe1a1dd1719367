-- heartbeat.lua: extend a lease, and tell the worker if it should stop.
-- KEYS[1] job record   KEYS[2] active set
-- ARGV[1] id   ARGV[2] lease token   ARGV[3] now ms ('': Redis' clock)   ARGV[4] lease ms
-- Returns 'ok', 'cancelled' (the job was cancelled), 'removed' (no record: removed, or the CR
-- was recreated) or 'lost' (another lease holds the job: it stalled and was taken over).
local jobKey, activeKey = KEYS[1], KEYS[2]
local f = redis.call('HMGET', jobKey, 'state', 'token')
if not f[1] then return 'removed' end
if f[1] == 'cancelled' then return 'cancelled' end
if f[1] ~= 'active' or f[2] ~= ARGV[2] then return 'lost' end
local leaseUntil = nowMs(ARGV[3]) + tonumber(ARGV[4])
redis.call('HSET', jobKey, 'leaseUntil', leaseUntil)
redis.call('ZADD', activeKey, leaseUntil, ARGV[1])
return 'ok'
