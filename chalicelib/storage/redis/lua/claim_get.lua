-- Returns a live claim and the messages it still holds.
-- ARGV: claim id. Returns {now, claim JSON, 11 fields per message (see emit)} or {now}.
local raw = redis.call('HGET', K_C, ARGV[1])
if not raw then return {NOW} end
local claim = cjson.decode(raw)
if claim.e <= NOW then return {NOW} end
local out = {NOW, raw}
for _, id in ipairs(claim.ids) do
  local r = redis.call('HGET', K_R, id)
  if r then
    local rec = cjson.decode(r)
    if rec.c == ARGV[1] and rec.ce > NOW and rec.e > NOW then emit(out, id, rec) end
  end
end
return out
