-- Deletes the given messages whatever their claims.
-- ARGV: ids. Returns how many existed.
local n = 0
for _, id in ipairs(ARGV) do
  if redis.call('HEXISTS', K_R, id) == 1 then
    drop(id)
    n = n + 1
  end
end
return n
