-- take_foreign.lua: take jobs whose id is not UTF-8 (arq's code, and redis-py's str keys, cannot name them) for a dead letter:
-- like CLAIM_JOBS, a job is taken only when it is still queued and nobody holds it (a poll may list an id
-- that another pass has just stored and forgotten); its lock is set and its body read.
-- KEYS: the queue, then per job its lock and body keys. ARGV: lock (ms), then the job ids.
-- Returns per job: body (empty when it has none) or nil when not taken.
local taken = {}
for i = 2, #KEYS, 2 do
  local queued = redis.call('zscore', KEYS[1], ARGV[i / 2 + 1])
  if queued and redis.call('set', KEYS[i], '1', 'nx', 'px', ARGV[1]) then
    local body = redis.pcall('get', KEYS[i + 1])
    if type(body) == 'table' then body = 'not a string: ' .. redis.call('type', KEYS[i + 1])['ok'] end
    taken[i / 2] = body or ''
  else
    taken[i / 2] = false
  end
end
return taken
