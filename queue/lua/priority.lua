-- priority.lua: give a job a new priority; a waiting job moves to its new place in line (FIFO
-- among its new peers by its enqueue sequence). Not a transition: the version and the CR's
-- status, which do not show priority, stay as they are.
-- KEYS[1] job record   KEYS[2] waiting set
-- ARGV[1] id   ARGV[2] owner uid   ARGV[3] priority
-- Returns 1 when the record changed, 0 when it had that priority already, or an error reply
-- 'NOTFOUND ...' when there is no record of that owner.
local jobKey, waitKey = KEYS[1], KEYS[2]
local f = redis.call('HMGET', jobKey, 'uid', 'priority', 'state', 'seq')
if not f[1] or f[1] ~= ARGV[2] then return redis.error_reply('NOTFOUND no record of this owner') end
local priority = tonumber(ARGV[3])
if (tonumber(f[2]) or 0) == priority then return 0 end
if priority == 0 then
  redis.call('HDEL', jobKey, 'priority') -- lean records leave the default out
else
  redis.call('HSET', jobKey, 'priority', priority)
end
if f[3] == 'waiting' then
  redis.call('ZADD', waitKey, 'XX', waitScore(priority, f[4]), ARGV[1])
end
return 1
