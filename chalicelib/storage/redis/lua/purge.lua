-- Removes every message and claim of a queue (claimed ones too), keeping
-- the queue, its metadata, its marker counter, pending dead letters and
-- the outbox (events already accepted must still be published).
redis.call('DEL', K_M, K_F, K_D, K_CM, K_E, K_R, K_B, K_C, K_CE)
return 1
