-- lease_token_above.lua: the holder's token, raised above the floor (the database's highest) when the
-- counter fell behind it (a Redis that lost its data): a new holder must fence out every earlier writer.
-- KEYS: the lease hash, its token counter. ARGV: holder, floor. Returns the token, or 0 when not the holder.
if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then return 0 end
local mine = tonumber(redis.call('HGET', KEYS[1], 'token'))
local floor = tonumber(ARGV[2])
if mine > floor then return mine end
local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
if counter < floor then counter = floor end
counter = counter + 1
redis.call('SET', KEYS[2], counter)
redis.call('HSET', KEYS[1], 'token', counter)
return counter
