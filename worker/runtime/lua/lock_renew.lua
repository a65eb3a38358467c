-- lock_renew.lua: renew only our own lock.
-- KEYS[1] the lock; ARGV[1] the holder's token, ARGV[2] the TTL in ms.
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
