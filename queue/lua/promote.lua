-- promote.lua: move delayed jobs whose due time has come to waiting. Leases do it too, but only
-- when a worker leases: with no worker running, a due job would stay delayed.
-- KEYS[1] delayed set   KEYS[2] waiting set   KEYS[3] events stream   KEYS[4] wake marker
-- ARGV[1] job key prefix   ARGV[2] now ms ('': Redis' clock)   ARGV[3] events max length
-- ARGV[4] batch size
-- Returns {moved, taken}: the jobs moved to waiting, and the entries taken from the delayed set
-- (more than moved when records had vanished); taken below the batch size: nothing more is due.
local moved, taken = promoteDue(KEYS[1], KEYS[2], KEYS[3], ARGV[1], nowMs(ARGV[2]), ARGV[3], tonumber(ARGV[4]))
if moved > 0 then wake(KEYS[4]) end
return {moved, taken}
