-- Reclaims expired messages and ended claims of one queue.
-- ARGV: budget per kind. Returns how many messages and claims were reclaimed.
return housekeep(tonumber(ARGV[1]))
