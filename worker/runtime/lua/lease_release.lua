-- lease_release.lua: give the writer lease up, only if it is ours.
-- KEYS: the lease hash. ARGV: holder.
if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
