-- forget_jobs.lua: forget jobs stored as dead letters: out of the queue, body, try count and lock gone.
-- KEYS: the queue, then per job its lock, body and retry keys. ARGV: the job ids.
for j = 1, #ARGV do
  redis.call('zrem', KEYS[1], ARGV[j])
  redis.call('del', KEYS[j * 3 - 1], KEYS[j * 3], KEYS[j * 3 + 1])
end
return 1
