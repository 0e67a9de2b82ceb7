-- Records that the queue has subscribers who can receive until ARGV[1] (ms):
-- the horizon only grows here, and every call bumps the generation.
-- Returns the new generation.
if tonumber(ARGV[1]) > tonumber(redis.call('HGET', K_L, 'until') or 0) then
  redis.call('HSET', K_L, 'until', ARGV[1])
end
return redis.call('HINCRBY', K_L, 'gen', 1)
