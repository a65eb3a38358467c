-- claim_jobs.lua: each job, in order: taken only if nobody runs it and it is due; then its lock is set and its body
-- and try count are read. Stops before a job whose body would take the claimed bytes over the
-- budget (ARGV[3]), unless it is the first and ARGV[4] is '1' (nothing else is running).
-- KEYS: the queue, then per job its lock, body and retry keys. ARGV: now (ms), lock (ms), budget,
-- one-may-exceed, then the job ids. Returns per claimed job: id, score, body or nil, tries or nil.
-- Scores are whatever a producer wrote: `-inf` and 0 are due (they run at once), `+inf` never is.
local now, lock_ms, budget = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local claimed, bytes = {}, 0
for i = 5, #ARGV do
  local base = (i - 5) * 3 + 1
  local lock, body_key, retry_key = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]
  if redis.call('exists', lock) == 0 then
    local score = redis.call('zscore', KEYS[1], ARGV[i])
    if score and tonumber(score) <= now then
      local body = redis.pcall('get', body_key)
      if type(body) == 'table' then body = false end  -- not a string (WRONGTYPE): arq's run_job reports it
      local size = body and #body or 0
      if bytes + size > budget and not (ARGV[4] == '1' and #claimed == 0) then break end
      redis.call('psetex', lock, lock_ms, '1')
      bytes = bytes + size
      -- A try count that is not a small whole number (a producer wrote it) would make INCR fail:
      -- count it as one try made, so the job runs through arq's run_job and its crash counting.
      local tries = redis.call('get', retry_key)
      if tries and (#tries > 9 or not string.match(tries, '^%d+$')) then
        redis.call('set', retry_key, '1', 'ex', 88400)
        tries = '1'
      end
      table.insert(claimed, ARGV[i])
      table.insert(claimed, score)
      table.insert(claimed, body)
      table.insert(claimed, tries)
    end
  end
end
return claimed
