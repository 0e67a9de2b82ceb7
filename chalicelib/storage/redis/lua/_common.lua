-- Shared prelude of every script (prepended when the scripts are loaded).
--
-- Key schema of one queue; every key carries the queue's hash tag, so a
-- script touches a single Redis Cluster slot (see chalicelib/storage/redis/keys.py):
--   KEYS[1]  q   hash   meta (JSON metadata), ctr (last marker), cr (created ms),
--                       s.* (reserved settings the scripts act on)
--   KEYS[2]  m   zset   every message id, scored by marker (post order)
--   KEYS[3]  f   zset   free messages: unclaimed and visible, scored by marker
--   KEYS[4]  d   zset   delayed messages, scored by the time they become visible
--   KEYS[5]  cm  zset   claimed messages, scored by claim expiry
--   KEYS[6]  e   zset   every message id, scored by message expiry
--   KEYS[7]  r   hash   id -> record JSON {k,t,cr,e,d,u,x,c,ce,cc}
--   KEYS[8]  b   hash   id -> body text (JSON, or ciphertext when x == 1)
--   KEYS[9]  c   hash   claim id -> claim JSON {e,t,g,cr,ids}
--   KEYS[10] ce  zset   claim ids, scored by claim expiry
--   KEYS[11] x   hash   id -> dead letter JSON {r,b,q,t} waiting for its target
--   KEYS[12] o   zset   outbox: event ids not yet published, scored by sequence
--   KEYS[13] ob  hash   outbox: event id -> entry JSON (chalicelib/storage/base.py StoredEvent)
--   KEYS[14] l   hash   until (ms: subscribers can receive until then), gen, seq (last event
--                       sequence), lh / le (publish lease holder and expiry ms)
--   KEYS[15] i   hash   idempotency key -> binding JSON {d (digest), x (bound until, ms), m (ids),
--                       f (flat ttl, delay pairs)} of a keyed post
--   KEYS[16] ie  zset   idempotency keys, scored by the end of their window
-- o, ob, l, i and ie are kept when the queue is deleted (i and ie expire with their last window).
--
-- Invariant: a live message is in exactly one of f, d and cm. Claims take
-- candidates from f only, so a message held by a live claim is never
-- offered again, whatever order other claims end in.
-- Times are milliseconds from the server's clock, shared by every client.
redis.replicate_commands()
local K_Q, K_M, K_F, K_D, K_CM, K_E, K_R, K_B, K_C, K_CE, K_X, K_O, K_OB, K_L, K_I, K_IE =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11],
  KEYS[12], KEYS[13], KEYS[14], KEYS[15], KEYS[16]
local _t = redis.call('TIME')
local NOW = tonumber(_t[1]) * 1000 + math.floor(tonumber(_t[2]) / 1000)

local function drop(id)
  redis.call('ZREM', K_M, id)
  redis.call('ZREM', K_F, id)
  redis.call('ZREM', K_D, id)
  redis.call('ZREM', K_CM, id)
  redis.call('ZREM', K_E, id)
  redis.call('HDEL', K_R, id)
  redis.call('HDEL', K_B, id)
end

-- Moves a message that is no longer claimed or delayed back to f.
local function free(id)
  local raw = redis.call('HGET', K_R, id)
  if raw then
    redis.call('ZADD', K_F, cjson.decode(raw).k, id)
  end
end

-- Reclaims what expired and frees what ended, at most `budget` of each kind.
local function housekeep(budget)
  local n = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_E, '-inf', NOW, 'LIMIT', 0, budget)) do
    drop(id)
    n = n + 1
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_CM, '-inf', NOW, 'LIMIT', 0, budget)) do
    redis.call('ZREM', K_CM, id)
    free(id)
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_D, '-inf', NOW, 'LIMIT', 0, budget)) do
    redis.call('ZREM', K_D, id)
    free(id)
  end
  for _, cid in ipairs(redis.call('ZRANGEBYSCORE', K_CE, '-inf', NOW, 'LIMIT', 0, budget)) do
    redis.call('HDEL', K_C, cid)
    redis.call('ZREM', K_CE, cid)
    n = n + 1
  end
  return n
end

-- Puts a message under claim `cid` until `claim_end`; a message that would
-- expire before `keep_until` lives until then, with ttl `life`.
local function hold(id, rec, cid, claim_end, keep_until, life)
  rec.c = cid
  rec.ce = claim_end
  if rec.e < keep_until then
    rec.e = keep_until
    rec.t = life
    redis.call('ZADD', K_E, keep_until, id)
  end
  redis.call('HSET', K_R, id, cjson.encode(rec))
  redis.call('ZADD', K_CM, claim_end, id)
end

-- Appends a message to `out` as RECORD_WIDTH flat fields (no JSON for the
-- client to parse): id, k, t, cr, e, d, x, c, ce, cc, body.
local function emit(out, id, rec)
  local n = #out
  out[n + 1] = id
  out[n + 2] = rec.k
  out[n + 3] = rec.t
  out[n + 4] = rec.cr
  out[n + 5] = rec.e
  out[n + 6] = rec.d
  out[n + 7] = rec.x
  out[n + 8] = rec.c
  out[n + 9] = rec.ce
  out[n + 10] = rec.cc
  out[n + 11] = redis.call('HGET', K_B, id) or ''
end

-- The outbox (see StoredEvent and MessageStore.outbox_lease in base.py).
local LEASE_MS = 15000    -- base.PUBLISH_LEASE_MS
local PENDING_COUNT = 100 -- base.PENDING_COUNT
local PENDING_BYTES = 900000 -- base.PENDING_BYTES

-- Writes an event to the outbox with the queue's next sequence; `body` is
-- the rest of the entry's JSON object after "s" (e.g. ',"d":{...}').
local function record(eid, kind, body)
  local seq = redis.call('HINCRBY', K_L, 'seq', 1)
  local doc = '{"id":' .. cjson.encode(eid) .. ',"k":' .. cjson.encode(kind) .. ',"t":' ..
    string.format('%d', NOW) .. ',"s":' .. string.format('%d', seq) .. body .. '}'
  redis.call('HSET', K_OB, eid, doc)
  redis.call('ZADD', K_O, seq, eid)
end

-- An event whose data is the JSON text `data`; nothing without an event id.
local function record_data(eid, kind, data)
  if eid ~= nil and eid ~= '' then record(eid, kind, ',"d":' .. data) end
end

-- A JSON array of strings (cjson would write an empty table as {}).
local function json_strings(list)
  if #list == 0 then return '[]' end
  return cjson.encode(list)
end

-- Appends the oldest pending entries to `out`, in sequence order.
local function pending_into(out)
  local size = 0
  for _, eid in ipairs(redis.call('ZRANGE', K_O, 0, PENDING_COUNT - 1)) do
    local doc = redis.call('HGET', K_OB, eid)
    if doc then
      if size > 0 and size + #doc > PENDING_BYTES then break end
      size = size + #doc
      out[#out + 1] = doc
    else
      redis.call('ZREM', K_O, eid)
    end
  end
end

local function lease_live(holder)
  local h = redis.call('HMGET', K_L, 'lh', 'le')
  return h[1] and h[1] ~= holder and tonumber(h[2] or 0) > NOW
end

-- Appends the pending entries to `out` and takes or renews the publish
-- lease for `holder` when there are any (with none, a lease of `holder`
-- is given up); false (nothing appended) when another holds a live lease.
local function lease_take(holder, out)
  if lease_live(holder) then return false end
  local before = #out
  pending_into(out)
  if #out > before then
    redis.call('HSET', K_L, 'lh', holder, 'le', NOW + LEASE_MS)
  elseif redis.call('HGET', K_L, 'lh') == holder then
    redis.call('HDEL', K_L, 'lh', 'le')
  end
  return true
end
