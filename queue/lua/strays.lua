-- strays.lua: hand back to waiting, uncounted, a worker's stray leases: every job leased to the
-- worker that the worker is not running. A worker whose Lease reply was lost holds leases it does
-- not know of; without this they would wait for the stall sweep, which counts an attempt and a
-- stall.
-- KEYS[1] active set   KEYS[2] waiting set   KEYS[3] events stream   KEYS[4] wake marker
-- ARGV[1] job key prefix   ARGV[2] worker id   ARGV[3] events max length
-- ARGV[4..] the ids of the jobs the worker runs: their leases are kept
-- Returns the ids handed back. Each one is released as release.lua releases a job: token, lease
-- and worker cleared, back at its place in line, version bumped, a 'waiting' event (reason
-- 'released'). It reads the whole active set: the leases of all workers, a few hundred at most.
local activeKey, waitKey, eventsKey, markerKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, worker, maxLen = ARGV[1], ARGV[2], ARGV[3]
local running = {}
for i = 4, #ARGV do running[ARGV[i]] = true end
local out = {}
for _, id in ipairs(redis.call('ZRANGE', activeKey, 0, -1)) do
  if not running[id] then
    local jobKey = prefix .. id
    local f = redis.call('HMGET', jobKey, 'state', 'worker')
    if f[1] == 'active' and f[2] == worker then
      redis.call('ZREM', activeKey, id)
      redis.call('HSET', jobKey, 'token', '', 'leaseUntil', 0, 'worker', '')
      toWaiting(jobKey, waitKey, id)
      local version = bump(jobKey)
      emit(eventsKey, maxLen, id, 'waiting', version, 'reason', 'released')
      out[#out + 1] = id
    end
  end
end
if #out > 0 then wake(markerKey) end
return out
