-- pause.lua: pause or resume a queue. A paused queue leases nothing; its jobs stay.
-- KEYS[1] meta hash   KEYS[2] events stream   KEYS[3] wake marker
-- ARGV[1] '1' to pause, '0' to resume   ARGV[2] events max length
redis.call('HSET', KEYS[1], 'paused', ARGV[1])
if ARGV[1] == '1' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'event', 'paused')
else
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'event', 'resumed')
  wake(KEYS[3])
end
return 1
