-- raise.lua: lift a record's version above a floor, as a transition of its own. A Redis restarted
-- from an older snapshot (or failed over to a lagging replica) can hold a record whose version is
-- below what its CR already reflects; every later transition would then look stale to the CR.
-- KEYS[1] job record   KEYS[2] events stream
-- ARGV[1] id   ARGV[2] owner uid   ARGV[3] floor   ARGV[4] events max length
-- Returns the record's version afterwards (unchanged when already above the floor), or an error
-- reply 'NOTFOUND ...' when there is no record of that owner.
local jobKey, eventsKey = KEYS[1], KEYS[2]
local f = redis.call('HMGET', jobKey, 'uid', 'version', 'state')
if not f[1] or f[1] ~= ARGV[2] then return redis.error_reply('NOTFOUND no record of this owner') end
local floor = tonumber(ARGV[3])
local version = tonumber(f[2] or '0') or 0
if version > floor then return version end
version = floor + 1
redis.call('HSET', jobKey, 'version', version)
emit(eventsKey, ARGV[4], ARGV[1], f[3], version, 'reason', 'version-raised')
return version
