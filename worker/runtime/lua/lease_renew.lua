-- lease_renew.lua: extend the writer lease only while we hold it.
-- KEYS: the lease hash. ARGV: holder, TTL (ms). Returns 1, or 0 when it is not ours.
if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
