-- sweep.lua: delete finished records older than their retention, oldest first, a bounded batch.
-- It is a safety net: normally a record goes when its CR goes.
-- KEYS[1] completed set   KEYS[2] failed set
-- ARGV[1] job key prefix   ARGV[2] completed cutoff ms   ARGV[3] failed cutoff ms   ARGV[4] batch
-- Returns the number of records deleted.
local prefix, batch = ARGV[1], tonumber(ARGV[4])
local deleted = 0
for i, cutoff in ipairs({ARGV[2], ARGV[3]}) do
  local old = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', cutoff, 'LIMIT', 0, batch)
  for _, id in ipairs(old) do
    redis.call('ZREM', KEYS[i], id)
    redis.call('DEL', prefix .. id)
    deleted = deleted + 1
  end
end
return deleted
