-- Renews a live claim from now: new ttl and grace, age starts again, and
-- messages that would expire before the claim ends plus grace live longer.
-- ARGV: claim id, ttl, grace, event id ('' = none). Returns 1, or 0 when the claim is gone.
local cid = ARGV[1]
local raw = redis.call('HGET', K_C, cid)
if not raw then return 0 end
local claim = cjson.decode(raw)
if claim.e <= NOW then return 0 end
local ttl, grace = tonumber(ARGV[2]), tonumber(ARGV[3])
local claim_end = NOW + ttl * 1000
local keep_until = claim_end + grace * 1000
record_data(ARGV[4], 'claim.updated', '{"claim_id":' .. cjson.encode(cid) .. ',"ttl":' ..
  string.format('%d', ttl) .. ',"grace":' .. string.format('%d', grace) .. '}')
local held = {}
for _, id in ipairs(claim.ids) do
  local r = redis.call('HGET', K_R, id)
  if r then
    local rec = cjson.decode(r)
    if rec.c == cid and rec.ce > NOW and rec.e > NOW then
      hold(id, rec, cid, claim_end, keep_until, ttl + grace)
      held[#held + 1] = id
    end
  end
end
if #held == 0 then
  redis.call('HDEL', K_C, cid)
  redis.call('ZREM', K_CE, cid)
  return 1
end
redis.call('HSET', K_C, cid, cjson.encode({e = claim_end, t = ttl, g = grace, cr = NOW, ids = held}))
redis.call('ZADD', K_CE, claim_end, cid)
return 1
