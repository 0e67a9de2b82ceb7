-- Reclaims expired messages and ended claims of one queue, and tells whether
-- the outbox holds an entry written before ARGV[2] (ms) while no publish
-- lease is live: whoever wrote it died before publishing it or telling the relay.
-- ARGV: budget per kind, stale-before time. Returns {reclaimed, stale (0|1)}.
local n = housekeep(tonumber(ARGV[1]))
local stale = 0
local oldest = redis.call('ZRANGE', K_O, 0, 0)[1]
if oldest and not lease_live('') then
  local doc = redis.call('HGET', K_OB, oldest)
  if not doc or tonumber(cjson.decode(doc).t) < tonumber(ARGV[2]) then stale = 1 end
end
return {n, stale}
