-- Releases a claim: the messages it still holds become free (or delayed) again.
-- ARGV: claim id, event id ('' = none). Idempotent.
local cid = ARGV[1]
local raw = redis.call('HGET', K_C, cid)
if not raw then return 0 end
for _, id in ipairs(cjson.decode(raw).ids) do
  local r = redis.call('HGET', K_R, id)
  if r then
    local rec = cjson.decode(r)
    if rec.c == cid and rec.ce > NOW then
      rec.c = ''
      rec.ce = 0
      redis.call('HSET', K_R, id, cjson.encode(rec))
      redis.call('ZREM', K_CM, id)
      if rec.d > NOW then redis.call('ZADD', K_D, rec.d, id) else redis.call('ZADD', K_F, rec.k, id) end
    end
  end
end
redis.call('HDEL', K_C, cid)
redis.call('ZREM', K_CE, cid)
record_data(ARGV[2], 'claim.deleted', '{"claim_id":' .. cjson.encode(cid) .. '}')
return 1
