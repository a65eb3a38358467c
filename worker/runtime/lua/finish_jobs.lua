-- finish_jobs.lua: arq's end of a job (MULTI, PEXPIRE or DEL of the lock, SET of the result, DEL, ZREM twice or
-- ZINCRBY, EXEC), for each job in turn. KEYS: the abort set, the queue, then per job its lock,
-- result, retry and body keys. ARGV, six per job: id, finish ('1'), result, result expiry (ms or
-- '' for none), lock expiry (ms, or '' to delete it), score increment ('' for none).
for j = 0, #ARGV / 6 - 1 do
  local a, k = j * 6, 2 + j * 4
  if ARGV[a + 5] == '' then redis.call('del', KEYS[k + 1]) else redis.call('pexpire', KEYS[k + 1], ARGV[a + 5]) end
  if ARGV[a + 2] == '1' then
    if ARGV[a + 3] ~= '' then
      if ARGV[a + 4] == '' then
        redis.call('set', KEYS[k + 2], ARGV[a + 3])
      else
        redis.call('set', KEYS[k + 2], ARGV[a + 3], 'px', ARGV[a + 4])
      end
    end
    redis.call('del', KEYS[k + 3], KEYS[k + 4])
    redis.call('zrem', KEYS[1], ARGV[a + 1])
    redis.call('zrem', KEYS[2], ARGV[a + 1])
  elseif ARGV[a + 6] ~= '' then
    redis.call('zincrby', KEYS[2], ARGV[a + 6], ARGV[a + 1])
  end
end
return 1
