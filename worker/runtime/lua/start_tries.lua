-- start_tries.lua: count a try of each job, as arq does when it starts one (INCR, then a day's expiry).
-- KEYS: each job's retry key (arq:retry:<id>).
local tries = {}
for i = 1, #KEYS do
  tries[i] = redis.call('incr', KEYS[i])
  redis.call('expire', KEYS[i], 88400)
end
return tries
