-- Deletes the given messages whatever their claims.
-- ARGV: event id ('' = none), ids. Returns how many existed.
local gone = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('HEXISTS', K_R, id) == 1 then
    drop(id)
    gone[#gone + 1] = id
  end
end
if #gone > 0 then record_data(ARGV[1], 'message.deleted', '{"ids":' .. json_strings(gone) .. '}') end
return #gone
