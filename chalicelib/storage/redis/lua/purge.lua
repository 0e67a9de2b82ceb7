-- Removes every message and claim of a queue (claimed ones too), keeping
-- the queue, its metadata, its marker counter, pending dead letters and
-- the outbox (events already accepted must still be published).
-- ARGV: event id ('' = none), then the resource types the queue.purged event reports.
if redis.call('EXISTS', K_Q) == 0 then return 0 end
redis.call('DEL', K_M, K_F, K_D, K_CM, K_E, K_R, K_B, K_C, K_CE)
local types = {}
for i = 2, #ARGV do types[#types + 1] = ARGV[i] end
record_data(ARGV[1], 'queue.purged', '{"resource_types":' .. json_strings(types) .. '}')
return 1
