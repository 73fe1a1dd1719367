-- counts.lua: the number of jobs in each state, read in one round trip at one moment.
-- KEYS[1] waiting set   KEYS[2] delayed set   KEYS[3] active set   KEYS[4] completed set
-- KEYS[5] failed set   KEYS[6] meta hash
-- ARGV[1] now ms ('': Redis' clock)
-- Returns {waiting, delayed, active, completed, failed, paused (1 or 0), due}: due counts the
-- delayed jobs whose due time has come (nobody has promoted them yet).
local out = {}
for i = 1, 5 do out[i] = redis.call('ZCARD', KEYS[i]) end
out[6] = redis.call('HGET', KEYS[6], 'paused') == '1' and 1 or 0
out[7] = redis.call('ZCOUNT', KEYS[2], '-inf', nowMs(ARGV[1]))
return out
