-- Counts a queue's messages and returns its oldest and newest.
-- Returns {now, total, claimed, [id, record, body of oldest, then of newest]}.
housekeep(100)
local out = {NOW, redis.call('ZCARD', K_M), redis.call('ZCOUNT', K_CM, '(' .. NOW, '+inf')}
local oldest = redis.call('ZRANGE', K_M, 0, 0)
local newest = redis.call('ZRANGE', K_M, -1, -1)
for _, ids in ipairs({oldest, newest}) do
  if ids[1] then
    local r = redis.call('HGET', K_R, ids[1])
    if r then emit(out, ids[1], cjson.decode(r)) end
  end
end
return out
