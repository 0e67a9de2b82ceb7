-- Returns the live messages among the given ids, in the order asked.
-- ARGV: ids. Returns {now, 11 fields per message (see emit)}.
local out = {NOW}
for _, id in ipairs(ARGV) do
  local raw = redis.call('HGET', K_R, id)
  if raw then
    local rec = cjson.decode(raw)
    if rec.e > NOW then emit(out, id, rec) end
  end
end
return out
