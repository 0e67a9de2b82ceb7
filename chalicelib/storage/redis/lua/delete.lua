-- Deletes one message, honouring its claim.
-- ARGV: id, claim id ('' = none), event id ('' = none).
-- Returns 'ok' | 'claimed' (no claim id was given and a live claim holds it) |
--         'not_claimed' (a claim id was given but it is not the message's live claim).
local raw = redis.call('HGET', K_R, ARGV[1])
if not raw then return 'ok' end
local rec = cjson.decode(raw)
if rec.e > NOW then
  local live = rec.c ~= '' and rec.ce > NOW
  if ARGV[2] == '' then
    if live then return 'claimed' end
  else
    if not live then return 'not_claimed' end
    if rec.c ~= ARGV[2] then return 'not_claimed' end
  end
end
drop(ARGV[1])
record_data(ARGV[3], 'message.deleted', '{"ids":' .. json_strings({ARGV[1]}) .. '}')
return 'ok'
