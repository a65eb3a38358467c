-- lock_release.lua: delete only our own lock.
-- KEYS[1] the lock; ARGV[1] the holder's token.
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
