-- Appends dead letters to this queue with their ids kept. Idempotent: a
-- letter whose id is already here is skipped, so a retried hand-over never
-- duplicates. The queue is created if needed (the caller registered it).
-- ARGV: groups of id, record JSON, body, ttl ('' = keep the message's expiry).
if redis.call('EXISTS', K_Q) == 0 then
  redis.call('HSET', K_Q, 'meta', '{}', 'ctr', 0, 'cr', NOW)
end
local n = 0
for a = 1, #ARGV, 4 do
  local id = ARGV[a]
  if redis.call('HEXISTS', K_R, id) == 0 then
    local rec = cjson.decode(ARGV[a + 1])
    rec.k = redis.call('HINCRBY', K_Q, 'ctr', 1)
    rec.c = ''
    rec.ce = 0
    rec.cc = 0
    rec.d = 0
    if ARGV[a + 3] ~= '' then
      rec.t = tonumber(ARGV[a + 3])
      rec.e = NOW + rec.t * 1000
    end
    redis.call('HSET', K_R, id, cjson.encode(rec))
    redis.call('HSET', K_B, id, ARGV[a + 2])
    redis.call('ZADD', K_M, rec.k, id)
    redis.call('ZADD', K_E, rec.e, id)
    redis.call('ZADD', K_F, rec.k, id)
    n = n + 1
  end
end
return n
