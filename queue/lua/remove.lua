-- remove.lua: delete a job's record wherever it is; a worker holding it learns it at its next
-- heartbeat.
-- KEYS[1] job record   KEYS[2] events stream   KEYS[3] stats hash   KEYS[4..] every state set
-- ARGV[1] id   ARGV[2] events max length   ARGV[3] owner uid, or '' for any
-- ARGV[4] '1' when removing a job that has not finished cancels it (the stats count it)
-- Returns the last version, 0 when there was no record, or -1 when the record belongs to
-- another uid (left alone).
local jobKey, eventsKey = KEYS[1], KEYS[2]
local id = ARGV[1]
local f = redis.call('HMGET', jobKey, 'uid', 'version', 'state')
if not f[1] then return 0 end
if ARGV[3] ~= '' and f[1] ~= ARGV[3] then return -1 end
for i = 4, #KEYS do redis.call('ZREM', KEYS[i], id) end
if ARGV[4] == '1' and f[3] ~= 'completed' and f[3] ~= 'failed' and f[3] ~= 'cancelled' then
  redis.call('HINCRBY', KEYS[3], 'cancelled', 1)
end
redis.call('DEL', jobKey)
local version = tonumber(f[2]) + 1
emit(eventsKey, ARGV[2], id, 'removed', version)
return version
