-- Reclaims expired messages and ended claims of one queue, and counts the
-- outbox events still unpublished since before ARGV[2] (ms): a request that
-- wrote them died before it could publish them or tell the relay.
-- ARGV: budget per kind, stale-before time. Returns {reclaimed, stale outbox events}.
local n = housekeep(tonumber(ARGV[1]))
return {n, redis.call('ZCOUNT', K_O, '-inf', ARGV[2])}
