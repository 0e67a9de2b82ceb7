-- Claims (or pops) up to `limit` free messages, oldest first.
-- Candidates come from f only, and each is checked again against its own
-- record, so a message in a live claim is never handed out twice.
-- Claim counting and the dead-letter move happen here, in the same step:
-- a message already claimed s.maxcc times leaves the queue for the
-- outbox x, from where the caller hands it to the dead-letter queue.
-- ARGV: claim id, ttl, grace, limit, scan budget, pop (0|1), event id ('' = none).
-- Returns {now, n dead, dead id..., 11 fields per message (see emit)}.
housekeep(100)
local cid = ARGV[1]
local ttl, grace = tonumber(ARGV[2]), tonumber(ARGV[3])
local limit, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local pop = ARGV[6] == '1'
local s = redis.call('HMGET', K_Q, 's.dlq', 's.maxcc', 's.dlqttl')
local dlq, maxcc = s[1], tonumber(s[2])
local use_dlq = (not pop) and dlq and maxcc
local claim_end = NOW + ttl * 1000
local keep_until = claim_end + grace * 1000
local taken, dead, items = {}, {}, {}
local scanned = 0
local start = '-inf'
while #taken < limit and scanned < budget do
  local batch = redis.call('ZRANGEBYSCORE', K_F, start, '+inf', 'WITHSCORES', 'LIMIT', 0, 64)
  if #batch == 0 then break end
  for j = 1, #batch, 2 do
    local id = batch[j]
    start = '(' .. batch[j + 1]
    scanned = scanned + 1
    local raw = redis.call('HGET', K_R, id)
    if not raw then
      redis.call('ZREM', K_F, id)
    else
      local rec = cjson.decode(raw)
      if rec.e <= NOW then
        drop(id)
      elseif rec.ce > NOW or rec.d > NOW then
        -- not free after all: keep the invariant and skip it
        redis.call('ZREM', K_F, id)
        if rec.ce > NOW then redis.call('ZADD', K_CM, rec.ce, id) else redis.call('ZADD', K_D, rec.d, id) end
      elseif use_dlq and rec.cc >= maxcc then
        local body = redis.call('HGET', K_B, id) or ''
        redis.call('HSET', K_X, id, cjson.encode({r = raw, b = body, q = dlq, t = s[3] or ''}))
        drop(id)
        dead[#dead + 1] = id
      else
        rec.cc = rec.cc + 1
        if pop then
          emit(items, id, rec)
          drop(id)
        else
          hold(id, rec, cid, claim_end, keep_until, ttl + grace)
          redis.call('ZREM', K_F, id)
          emit(items, id, rec)
        end
        taken[#taken + 1] = id
        if #taken == limit then break end
      end
    end
    if scanned >= budget then break end
  end
end
if #taken > 0 and not pop then
  redis.call('HSET', K_C, cid, cjson.encode({e = claim_end, t = ttl, g = grace, cr = NOW, ids = taken}))
  redis.call('ZADD', K_CE, claim_end, cid)
  record_data(ARGV[7], 'claim.created', '{"claim_id":' .. cjson.encode(cid) .. ',"ids":' .. json_strings(taken) .. '}')
elseif #taken > 0 then
  record_data(ARGV[7], 'message.deleted', '{"ids":' .. json_strings(taken) .. '}')
end
local out = {NOW, #dead}
for _, id in ipairs(dead) do out[#out + 1] = id end
for _, v in ipairs(items) do out[#out + 1] = v end
return out
