-- prelude.lua is prepended to every script of this directory: helpers shared by the scripts.
-- Every key a script touches carries the queue's hash tag, so a script runs on one Cluster slot.
-- Times are Unix milliseconds: the caller's clock when it sends one (tests inject a clock), else
-- Redis' own (nowMs).

-- A job record is a hash; these helpers read its fields as numbers.
local function num(key, field)
  return tonumber(redis.call('HGET', key, field) or '0') or 0
end

-- The attempts a job is allowed: Enqueue does not store the default, 1.
local function maxAttempts(key)
  return tonumber(redis.call('HGET', key, 'maxAttempts') or '1') or 1
end

-- Waiting jobs are a sorted set popped lowest score first: higher priority first, then FIFO by
-- the queue's enqueue sequence. Priority is bounded to [-1000, 1000] by the API; a record
-- without the field (priority 0 is not stored) passes false or nil.
local function waitScore(priority, seq)
  return (1000 - (tonumber(priority) or 0)) * 1e12 + tonumber(seq)
end

-- Every transition bumps the record's version; status writes carry it to fence stale writes.
local function bump(jobKey)
  return redis.call('HINCRBY', jobKey, 'version', 1)
end

-- emit appends one event to the queue's capped stream. Extra field/value pairs follow.
local function emit(streamKey, maxLen, jobID, event, version, ...)
  redis.call('XADD', streamKey, 'MAXLEN', '~', maxLen, '*',
    'job', jobID, 'event', event, 'version', version, ...)
end

-- wake lets one blocked worker's BZPOPMIN return: jobs are ready.
local function wake(markerKey)
  redis.call('ZADD', markerKey, 0, 'ready')
end

-- toWaiting puts a record back in the waiting set at its original FIFO place.
local function toWaiting(jobKey, waitKey, id)
  local f = redis.call('HMGET', jobKey, 'priority', 'seq')
  redis.call('ZADD', waitKey, waitScore(f[1], f[2]), id)
  redis.call('HSET', jobKey, 'state', 'waiting', 'dueAt', 0)
end

-- callChunked runs cmd on key with args spread over as few calls as Lua's unpack allows: one
-- call for a batch's usual size. step is a multiple of the command's arity (2 for ZADD pairs).
local function callChunked(cmd, key, args, step)
  for i = 1, #args, step do
    redis.call(cmd, key, unpack(args, i, math.min(i + step - 1, #args)))
  end
end

-- nowMs is the time a script works at, in Unix ms: the caller's (ARGV; tests inject a clock) or,
-- when the caller sends '', Redis' own (TIME): one clock for every worker and the controller, so a
-- lease stamped by one host is renewed and reclaimed by the same clock on another.
local function nowMs(arg)
  local n = tonumber(arg)
  if n then return n end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- promoteDue moves up to limit delayed jobs whose due time has come to waiting, each at its FIFO
-- place, versioned and evented. Records that vanished are dropped from the delayed set. It
-- returns how many jobs it moved and how many entries it took from the delayed set.
local function promoteDue(delayedKey, waitKey, eventsKey, prefix, now, maxLen, limit)
  local due = redis.call('ZRANGEBYSCORE', delayedKey, '-inf', now, 'LIMIT', 0, limit)
  if #due == 0 then return 0, 0 end
  callChunked('ZREM', delayedKey, due, 1000)
  local toWait = {}
  for _, id in ipairs(due) do
    local jobKey = prefix .. id
    local f = redis.call('HMGET', jobKey, 'version', 'priority', 'seq')
    if f[1] then -- the record exists (every record has a version)
      local version = tonumber(f[1]) + 1
      redis.call('HSET', jobKey, 'state', 'waiting', 'dueAt', 0, 'version', version)
      toWait[#toWait + 1] = waitScore(f[2], f[3])
      toWait[#toWait + 1] = id
      emit(eventsKey, maxLen, id, 'waiting', version)
    end
  end
  callChunked('ZADD', waitKey, toWait, 1000)
  return #toWait / 2, #due
end

-- Lifetime statistics (stats.go): counters and duration histograms in the queue's stats hash,
-- bumped by the script that makes the transition, so each event counts once. A script gathers
-- its increments in a table (statsNew, statsInc, statsObserve) and writes them with one HINCRBY
-- per field (statsFlush): a batch of jobs costs a few calls, not a few per job.
-- statsBucketsMs (the bounds, ascending) is prepended by scripts.go.
local function statsNew() return {} end

local function statsInc(acc, field, n)
  acc[field] = (acc[field] or 0) + (n or 1)
end

-- statsObserve counts ms in histogram name: the first bucket whose bound it does not exceed
-- (1-based; #statsBucketsMs + 1 is the unbounded one), and adds it to the sum.
local function statsObserve(acc, name, ms)
  if ms < 0 then ms = 0 end
  local bucket = #statsBucketsMs + 1
  for i, le in ipairs(statsBucketsMs) do
    if ms <= le then bucket = i break end
  end
  statsInc(acc, name .. ':' .. bucket, 1)
  statsInc(acc, name .. ':sum', ms)
end

local function statsFlush(statsKey, acc)
  for field, n in pairs(acc) do redis.call('HINCRBY', statsKey, field, n) end
end
