-- lease_acquire.lua: take the writer lease when free, with a new fencing token; extend it (same
-- token) when it is ours already, kept across a Redis outage.
-- KEYS: the lease hash (komas:lease:<db>:<partition>), its token counter (...:token).
-- ARGV: holder, host, pid, since, TTL (ms). Returns the token, or 0 when another holds it.
local holder = redis.call('HGET', KEYS[1], 'holder')
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return tonumber(redis.call('HGET', KEYS[1], 'token'))
end
if holder then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'host', ARGV[2], 'pid', ARGV[3], 'since', ARGV[4], 'token', token)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return token
