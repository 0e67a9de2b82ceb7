-- Forgets published entries, then hands out the next ones or gives the lease up.
-- ARGV: holder, keep (0|1), published event ids...
-- Returns the next entries (the lease renewed), or {} (released, lost, or nothing left).
for i = 3, #ARGV do
  redis.call('ZREM', K_O, ARGV[i])
  redis.call('HDEL', K_OB, ARGV[i])
end
local h = redis.call('HGET', K_L, 'lh')
if h ~= ARGV[1] then return {} end
local out = {}
if ARGV[2] == '1' then
  lease_take(ARGV[1], out)
else
  redis.call('HDEL', K_L, 'lh', 'le')
end
return out
