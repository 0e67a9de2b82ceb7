-- Creates a queue or replaces its metadata.
-- ARGV: mode ('create' | 'update'), metadata JSON, event id ('' = none), then
-- field/value pairs of the reserved settings (s.*) that are set; the others are removed.
-- Returns 1 when done, 0 when the queue exists (create) or is missing (update).
local exists = redis.call('EXISTS', K_Q) == 1
if ARGV[1] == 'create' and exists then return 0 end
if ARGV[1] == 'update' and not exists then return 0 end
if not exists then redis.call('HSET', K_Q, 'ctr', 0, 'cr', NOW) end
redis.call('HDEL', K_Q, 's.ttl', 's.delay', 's.maxpost', 's.dlq', 's.dlqttl', 's.maxcc', 's.enc')
redis.call('HSET', K_Q, 'meta', ARGV[2])
for i = 4, #ARGV, 2 do redis.call('HSET', K_Q, ARGV[i], ARGV[i + 1]) end
local kind = 'queue.updated'
if ARGV[1] == 'create' then kind = 'queue.created' end
record_data(ARGV[3], kind, '{"metadata":' .. ARGV[2] .. '}')
return 1
