-- Lists messages after a marker, oldest first, filtering inside the script
-- so that a page is short only when nothing more matches (or the scan
-- budget ran out, in which case the next marker lets the client go on).
-- ARGV: marker (0 = start), limit, client id, echo (0|1),
--       include_claimed (0|1), include_delayed (0|1), scan budget.
-- Returns {now, next marker or '', 11 fields per message (see emit)}.
housekeep(100)
local limit = tonumber(ARGV[2])
local client = ARGV[3]
local echo = ARGV[4] == '1'
local with_claimed = ARGV[5] == '1'
local with_delayed = ARGV[6] == '1'
local budget = tonumber(ARGV[7])
local source = K_F
if with_claimed or with_delayed then source = K_M end
local out = {NOW, ''}
local found, scanned = 0, 0
local start = '(' .. ARGV[1]
local last_scanned, last_found = nil, nil
while found < limit and scanned < budget do
  local batch = redis.call('ZRANGEBYSCORE', source, start, '+inf', 'WITHSCORES', 'LIMIT', 0, 64)
  if #batch == 0 then break end
  for j = 1, #batch, 2 do
    local id, score = batch[j], batch[j + 1]
    scanned = scanned + 1
    last_scanned = score
    local raw = redis.call('HGET', K_R, id)
    if raw then
      local rec = cjson.decode(raw)
      local ok = rec.e > NOW
      if ok and not echo and rec.u == client then ok = false end
      if ok and not with_claimed and rec.ce > NOW then ok = false end
      if ok and not with_delayed and rec.d > NOW then ok = false end
      if ok then
        emit(out, id, rec)
        found = found + 1
        last_found = score
        if found == limit then break end
      end
    end
    if scanned >= budget then break end
  end
  start = '(' .. last_scanned
end
if found == limit then
  out[2] = last_found
elseif scanned >= budget and last_scanned then
  out[2] = last_scanned
elseif last_found then
  out[2] = last_found
end
return out
