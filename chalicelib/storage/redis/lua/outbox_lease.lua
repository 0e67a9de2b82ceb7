-- Takes (or renews) the queue's publish lease.
-- ARGV: holder. Returns {1, entry...} (the lease is taken only when there is an entry)
--       | {0} (another holds a live lease).
local out = {1}
if not lease_take(ARGV[1], out) then return {0} end
return out
