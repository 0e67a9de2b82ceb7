-- Appends messages to a queue, creating it when asked, and, when the queue
-- has subscribers who can receive (or every event is streamed), the
-- message.posted event to the queue's outbox, in the same atomic step.
-- ARGV: create (0|1), client id, encrypted (0|1), request size, default ttl,
--       event id ('' = no stream: never an event), stream every event (0|1),
--       idempotency key ('' = none), its digest, its window (ms),
--       then per message: id, ttl ('' = queue default), delay ('' = default), body.
-- A key bound within its window answers the binding's ids ('repeat') when the digest is the same and
-- 'conflict' when not, storing nothing; otherwise the post binds it until now + window.
-- The outbox entry is {"id", "t" (ms), "x" (0|1), "m": [[id, ttl, delay, body], ...]}
-- with each message's effective ttl and delay (chalicelib/storage/base.py reads it).
-- With the event stored, the post tries the queue's publish lease (holder: the event id).
-- Returns {'ok', now, stored (0|1), leased (0|1), ttl, delay, ..., pending entry...}
--       | {'repeat', now, count, id..., ttl, delay, ...} | {'conflict'}
--       | {'missing'} | {'encrypt'} | {'too_large', limit}.
local key = ARGV[8]
if key ~= '' then
  for _, old in ipairs(redis.call('ZRANGEBYSCORE', K_IE, '-inf', NOW, 'LIMIT', 0, 20)) do
    redis.call('HDEL', K_I, old)
    redis.call('ZREM', K_IE, old)
  end
  local raw = redis.call('HGET', K_I, key)
  if raw then
    local bound = cjson.decode(raw)
    if bound.x > NOW then
      if bound.d ~= ARGV[9] then return {'conflict'} end
      local out = {'repeat', NOW, #bound.m}
      for _, id in ipairs(bound.m) do out[#out + 1] = id end
      for _, v in ipairs(bound.f) do out[#out + 1] = v end
      return out
    end
  end
end
local created = false
if redis.call('EXISTS', K_Q) == 0 then
  if ARGV[1] ~= '1' then return {'missing'} end
  redis.call('HSET', K_Q, 'meta', '{}', 'ctr', 0, 'cr', NOW)
  created = true
end
local s = redis.call('HMGET', K_Q, 's.ttl', 's.delay', 's.maxpost', 's.enc')
if s[3] and tonumber(ARGV[4]) > tonumber(s[3]) then return {'too_large', s[3]} end
if s[4] == '1' and ARGV[3] ~= '1' then return {'encrypt'} end
housekeep(20)
local default_ttl = tonumber(s[1] or ARGV[5])
local default_delay = tonumber(s[2] or 0)
local encrypted = tonumber(ARGV[3])
local n = (#ARGV - 10) / 4
local first = redis.call('HINCRBY', K_Q, 'ctr', n) - n + 1
local listening = tonumber(redis.call('HGET', K_L, 'until') or 0) > NOW
local store_event = ARGV[6] ~= '' and (ARGV[7] == '1' or listening)
local out = {'ok', NOW, store_event and 1 or 0, 0}
local entries = {}
for i = 0, n - 1 do
  local a = 11 + i * 4
  local id = ARGV[a]
  local ttl = default_ttl
  if ARGV[a + 1] ~= '' then ttl = tonumber(ARGV[a + 1]) end
  local delay = default_delay
  if ARGV[a + 2] ~= '' then delay = tonumber(ARGV[a + 2]) end
  local marker = first + i
  local visible = 0
  if delay > 0 then visible = NOW + delay * 1000 end
  local expires = NOW + ttl * 1000
  local rec = {k = marker, t = ttl, cr = NOW, e = expires, d = visible, u = ARGV[2],
               x = encrypted, c = '', ce = 0, cc = 0}
  redis.call('HSET', K_R, id, cjson.encode(rec))
  redis.call('HSET', K_B, id, ARGV[a + 3])
  redis.call('ZADD', K_M, marker, id)
  redis.call('ZADD', K_E, expires, id)
  if visible > 0 then
    redis.call('ZADD', K_D, visible, id)
  else
    redis.call('ZADD', K_F, marker, id)
  end
  out[#out + 1] = ttl
  out[#out + 1] = delay
  if store_event then entries[#entries + 1] = {id, ttl, delay, ARGV[a + 3]} end
end
if key ~= '' then
  local ids, flat = {}, {}
  for i = 0, n - 1 do ids[#ids + 1] = ARGV[11 + i * 4] end
  for i = 5, #out do flat[#flat + 1] = out[i] end
  local until_ms = NOW + tonumber(ARGV[10])
  redis.call('HSET', K_I, key, cjson.encode({d = ARGV[9], x = until_ms, m = ids, f = flat}))
  redis.call('ZADD', K_IE, until_ms, key)
  for _, k in ipairs({K_I, K_IE}) do  -- both go when their last window ends, whatever else happens
    if redis.call('PTTL', k) < tonumber(ARGV[10]) then redis.call('PEXPIRE', k, tonumber(ARGV[10])) end
  end
end
if store_event then
  if created and ARGV[7] == '1' then record_data(ARGV[6] .. '-q', 'queue.created', '{"metadata":{}}') end
  record(ARGV[6], 'message.posted', ',"x":' .. encrypted .. ',"m":' .. cjson.encode(entries))
  if lease_take(ARGV[6], out) then out[4] = 1 end
end
return out
