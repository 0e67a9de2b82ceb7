-- Takes a queue off the pool's outbox index, unless someone flagged it again
-- after the relay read it (the score changed). Loaded without the prelude:
-- KEYS[1] is the index (chalicelib/storage/redis/keys.py OUTBOXES), not a queue.
-- ARGV: member, the score it had when read. Returns 1 when removed, 0 otherwise.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0
