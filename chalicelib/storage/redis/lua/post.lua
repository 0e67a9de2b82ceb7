-- Appends messages to a queue, creating it when asked, and, when the queue
-- has subscribers who can receive (or every event is streamed), the
-- message.posted event to the queue's outbox, in the same atomic step.
-- ARGV: create (0|1), client id, encrypted (0|1), request size, default ttl,
--       event id ('' = no stream: never an event), stream every event (0|1),
--       then per message: id, ttl ('' = queue default), delay ('' = default), body.
-- The outbox entry is {"id", "t" (ms), "x" (0|1), "m": [[id, ttl, delay, body], ...]}
-- with each message's effective ttl and delay (chalicelib/storage/base.py reads it).
-- With the event stored, the post tries the queue's publish lease (holder: the event id).
-- Returns {'ok', now, stored (0|1), leased (0|1), ttl, delay, ..., pending entry...}
--       | {'missing'} | {'encrypt'} | {'too_large', limit}.
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
local n = (#ARGV - 7) / 4
local first = redis.call('HINCRBY', K_Q, 'ctr', n) - n + 1
local listening = tonumber(redis.call('HGET', K_L, 'until') or 0) > NOW
local store_event = ARGV[6] ~= '' and (ARGV[7] == '1' or listening)
local out = {'ok', NOW, store_event and 1 or 0, 0}
local entries = {}
for i = 0, n - 1 do
  local a = 8 + i * 4
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
if store_event then
  if created and ARGV[7] == '1' then record_data(ARGV[6] .. '-q', 'queue.created', '{"metadata":{}}') end
  record(ARGV[6], 'message.posted', ',"x":' .. encrypted .. ',"m":' .. cjson.encode(entries))
  if lease_take(ARGV[6], out) then out[4] = 1 end
end
return out
