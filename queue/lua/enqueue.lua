-- enqueue.lua: add jobs, or return the ones already there (Enqueue is a batch of one).
-- KEYS[1] waiting set   KEYS[2] delayed set   KEYS[3] meta hash   KEYS[4] events stream
-- KEYS[5] wake marker   KEYS[6..8] the other state sets (active, completed, failed), cleared when
-- a record is replaced
-- KEYS[8+i] job i's record (i = 1..n)
-- ARGV[1] now ms ('': Redis' clock)   ARGV[2] events max length
-- then per job, in order: id, owner uid, payload, delay ms, version floor (the new record's
-- version starts above it), the version a new record gets when no old one is replaced (floor + 1,
-- as the caller computed it), priority, m, and m field/value pairs of the record's settings that
-- differ from their defaults (pv, maxAttempts: absent reads as 1; priority, backoff*, timeout:
-- absent reads as zero; backoffType: absent reads as fixed; retryToken: absent reads as none)
-- Returns one reply per job: a created job's version (its state is the one its delay asked for),
-- or {outcome, version, state} with outcome 'exists' (same id and uid: nothing changed) or
-- 'conflict' (same id, other uid, old record still live). A bare number is the cheapest reply to
-- build and to read.
--
-- A new record holds only what is not zero yet (attempts, stalls, progress, the times of later
-- transitions are absent until set): every field costs Redis time, and the payload makes the
-- hash a hashtable. Every redis.call costs about as much again as its command, so a new job
-- costs two calls of its own (HSET, XADD) and the call's jobs share the rest: one HINCRBY that
-- reserves their FIFO sequence numbers (a job that is not created leaves a gap, which orders
-- nothing differently), one EXISTS of all their records, one ZADD per set and the marker.
local waitKey, delayedKey, metaKey, eventsKey, markerKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, maxLen = nowMs(ARGV[1]), ARGV[2]
local nowArg = ARGV[1] ~= '' and ARGV[1] or string.format('%d', now)
local n = #KEYS - 8
local seq = redis.call('HINCRBY', metaKey, 'seq', n) - n
-- One EXISTS for all the records; only when one is there (or a job's id came earlier in this
-- call) does a job read its old record.
local anyOld = redis.call('EXISTS', unpack(KEYS, 9)) > 0
local created = {} -- job key -> true once this call created it
local out = {}
local waiting, delayed = {}, {} -- ZADD score/member pairs, added once after the loop
local a = 3
for i = 1, n do
  local jobKey = KEYS[8 + i]
  local id, uid, payload, delay, floor, version, priority, m = ARGV[a], ARGV[a + 1], ARGV[a + 2],
    tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), ARGV[a + 5], ARGV[a + 6], tonumber(ARGV[a + 7])
  local first, last = a + 8, a + 7 + 2 * m
  a = last + 1
  seq = seq + 1

  -- version is a string while no old record is replaced: numbers passed to Redis are formatted
  -- on every call, strings are not.
  local skip = false
  local old = (anyOld or created[jobKey]) and redis.call('HMGET', jobKey, 'uid', 'state', 'version')
  if old and old[1] then
    if old[1] == uid then
      out[i] = {'exists', tonumber(old[3]), old[2]}
      skip = true
    elseif old[2] ~= 'completed' and old[2] ~= 'failed' and old[2] ~= 'cancelled' then
      out[i] = {'conflict', tonumber(old[3]), old[2]}
      skip = true
    else
      -- A recreated CR: the finished record of the old one gives way; versions keep rising.
      -- (An earlier job of this call cannot be the old record: that one would be live.)
      version = math.max(tonumber(old[3]), floor) + 1
      redis.call('ZREM', waitKey, id)
      redis.call('ZREM', delayedKey, id)
      for k = 6, 8 do redis.call('ZREM', KEYS[k], id) end
      redis.call('DEL', jobKey)
    end
  end

  if not skip then
    created[jobKey] = true
    if delay > 0 then
      local dueAt = now + delay
      redis.call('HSET', jobKey, 'id', id, 'uid', uid, 'payload', payload, 'seq', seq, 'state', 'delayed',
        'createdAt', nowArg, 'version', version, 'dueAt', dueAt, 'delayReason', 'delay', unpack(ARGV, first, last))
      delayed[#delayed + 1] = dueAt
      delayed[#delayed + 1] = id
      emit(eventsKey, maxLen, id, 'delayed', version, 'dueAt', dueAt)
      out[i] = tonumber(version)
    else
      redis.call('HSET', jobKey, 'id', id, 'uid', uid, 'payload', payload, 'seq', seq, 'state', 'waiting',
        'createdAt', nowArg, 'version', version, unpack(ARGV, first, last))
      waiting[#waiting + 1] = waitScore(priority, seq)
      waiting[#waiting + 1] = id
      emit(eventsKey, maxLen, id, 'waiting', version)
      out[i] = tonumber(version)
    end
  end
end
callChunked('ZADD', waitKey, waiting, 1000)
callChunked('ZADD', delayedKey, delayed, 1000)
-- A new waiting job wakes a blocked worker; a new delayed one makes it recompute its sleep.
if #waiting + #delayed > 0 then wake(markerKey) end
return out
