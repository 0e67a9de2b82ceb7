-- Lowers the listening horizon to ARGV[1] (ms), computed from the
-- subscriptions as they were when generation ARGV[2] was read; refused when
-- a subscription raised it since. The key is never deleted, so generations
-- never repeat. Returns 1 when lowered, 0 when refused.
if (redis.call('HGET', K_L, 'gen') or '0') ~= ARGV[2] then return 0 end
redis.call('HSET', K_L, 'until', ARGV[1])
return 1
