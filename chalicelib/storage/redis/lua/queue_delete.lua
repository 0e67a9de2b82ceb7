-- Deletes a queue with its messages, claims and pending dead letters; the
-- outbox and the listener record stay (see _common.lua).
-- ARGV: event id ('' = none). Returns 1 when the queue existed.
if redis.call('EXISTS', K_Q) == 0 then return 0 end
redis.call('DEL', K_Q, K_M, K_F, K_D, K_CM, K_E, K_R, K_B, K_C, K_CE, K_X)
record_data(ARGV[1], 'queue.deleted', '{}')
return 1
