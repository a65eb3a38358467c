"""Starting and ending arq jobs in Redis, several at once: the worker's Lua scripts and their callers.

arq claims a job in four round trips, starts it in one more and ends it in a seven-command
transaction, one job at a time. At a few thousand single-event jobs a second those round trips,
and redis-py packing each command, were most of the worker's work. These scripts do the same
checks and writes atomically, for as many jobs as one poll found, in one round trip each.
The keys are arq's (`arq:in-progress:`, `arq:job:`, `arq:retry:`, `arq:result:`), so arq's own
code (its `run_job`, `Job.status()`, `Job.result()`) sees exactly what it would have written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix
from redis.commands.core import AsyncScript

#: Each job, in order: taken only if nobody runs it and it is due; then its lock is set and its body
#: and try count are read. Stops before a job whose body would take the claimed bytes over the
#: budget (ARGV[3]), unless it is the first and ARGV[4] is '1' (nothing else is running).
#: KEYS: the queue, then per job its lock, body and retry keys. ARGV: now (ms), lock (ms), budget,
#: one-may-exceed, then the job ids. Returns per claimed job: id, score, body or nil, tries or nil.
#: Scores are whatever a producer wrote: `-inf` and 0 are due (they run at once), `+inf` never is.
CLAIM_JOBS = """
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
"""

#: Count a try of each job, as arq does when it starts one (INCR, then a day's expiry).
START_TRIES = """
local tries = {}
for i = 1, #KEYS do
  tries[i] = redis.call('incr', KEYS[i])
  redis.call('expire', KEYS[i], 88400)
end
return tries
"""

#: arq's end of a job (MULTI, PEXPIRE or DEL of the lock, SET of the result, DEL, ZREM twice or
#: ZINCRBY, EXEC), for each job in turn. KEYS: the abort set, the queue, then per job its lock,
#: result, retry and body keys. ARGV, six per job: id, finish ('1'), result, result expiry (ms or
#: '' for none), lock expiry (ms, or '' to delete it), score increment ('' for none).
FINISH_JOBS = """
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
"""


#: Take jobs whose id is not UTF-8 (arq's code, and redis-py's str keys, cannot name them) for a dead letter:
#: like CLAIM_JOBS, a job is taken only when it is still queued and nobody holds it (a poll may list an id
#: that another pass has just stored and forgotten); its lock is set and its body read.
#: KEYS: the queue, then per job its lock and body keys. ARGV: lock (ms), then the job ids.
#: Returns per job: body (empty when it has none) or nil when not taken.
TAKE_FOREIGN = """
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
"""

#: Forget jobs stored as dead letters: out of the queue, body, try count and lock gone.
#: KEYS: the queue, then per job its lock, body and retry keys. ARGV: the job ids.
FORGET_JOBS = """
for j = 1, #ARGV do
  redis.call('zrem', KEYS[1], ARGV[j])
  redis.call('del', KEYS[j * 3 - 1], KEYS[j * 3], KEYS[j * 3 + 1])
end
return 1
"""

#: Scores beyond this many ms since the epoch (year 9999) are taken as "in the far future".
MAX_SCORE_MS = 253_402_300_799_999


def score_ms(raw: bytes | str) -> int:
    """A job's score (as Redis returns it) as whole ms: `-inf` and negatives are 0, `+inf` the largest date."""
    value = float(raw)
    return int(min(value, MAX_SCORE_MS)) if value > 0 else 0


@dataclass(frozen=True)
class Claimed:
    """A job this worker now holds the lock of."""

    job_id: str
    score: int
    #: None when the job's body has expired (arq reports such a job as failed).
    body: bytes | None
    #: Tries counted before this one (0: it never started).
    tries: int


@dataclass(frozen=True)
class Finish:
    """How one job ends: the arguments of arq's `Worker.finish_job`."""

    job_id: str
    finish: bool
    result_data: bytes | None = None
    result_timeout_s: float | None = None
    keep_result_forever: bool = False
    incr_score: int | None = None
    keep_in_progress: float | None = None


def _ms_or_empty(seconds: float | None) -> int | str:
    return "" if seconds is None else round(seconds * 1000)


class JobScripts:
    """The scripts, registered on one connection pool (redis-py reloads them after a Redis restart)."""

    def __init__(self, redis: Any, queue: str) -> None:
        self.queue = queue
        self._claim: AsyncScript = redis.register_script(CLAIM_JOBS)
        self._start: AsyncScript = redis.register_script(START_TRIES)
        self._finish: AsyncScript = redis.register_script(FINISH_JOBS)
        self._take_foreign: AsyncScript = redis.register_script(TAKE_FOREIGN)
        self._forget: AsyncScript = redis.register_script(FORGET_JOBS)

    async def claim(
        self, job_ids: Sequence[str], *, now_ms: int, lock_ms: int, budget_bytes: int, one_may_exceed: bool
    ) -> list[Claimed]:
        """Lock the due, free jobs among `job_ids` (in order, within the byte budget) and read them."""
        keys = [self.queue]
        for job_id in job_ids:
            keys += [in_progress_key_prefix + job_id, job_key_prefix + job_id, retry_key_prefix + job_id]
        args: list[Any] = [now_ms, lock_ms, budget_bytes, "1" if one_may_exceed else "0", *job_ids]
        reply = await self._claim(keys=keys, args=args)
        return [
            Claimed(
                job_id=reply[i].decode(),
                score=score_ms(reply[i + 1]),
                body=reply[i + 2],
                tries=int(reply[i + 3] or 0),
            )
            for i in range(0, len(reply), 4)
        ]

    async def start(self, job_ids: Sequence[str]) -> list[int]:
        """Count a try of each job; returns each one's try number (1 for a first run)."""
        return [int(tries) for tries in await self._start(keys=[retry_key_prefix + job_id for job_id in job_ids])]

    async def finish(self, finishes: Sequence[Finish]) -> None:
        """End the jobs as arq's `finish_job` would, each in turn, atomically."""
        keys = [abort_jobs_ss, self.queue]
        args: list[Any] = []
        for end in finishes:
            keys += [prefix + end.job_id for prefix in (in_progress_key_prefix, result_key_prefix)]
            keys += [retry_key_prefix + end.job_id, job_key_prefix + end.job_id]
            args += [
                end.job_id,
                "1" if end.finish else "0",
                end.result_data or b"",
                "" if end.keep_result_forever else _ms_or_empty(end.result_timeout_s),
                _ms_or_empty(end.keep_in_progress),
                "" if end.incr_score is None else end.incr_score,
            ]
        await self._finish(keys=keys, args=args)

    async def take_foreign(self, job_ids: Sequence[bytes], *, lock_ms: int) -> dict[bytes, bytes]:
        """Lock the jobs among `job_ids` nobody holds and read their bodies (ids are raw bytes, any bytes)."""
        keys: list[Any] = [self.queue]
        for job_id in job_ids:
            keys += [in_progress_key_prefix.encode() + job_id, job_key_prefix.encode() + job_id]
        reply = await self._take_foreign(keys=keys, args=[lock_ms, *job_ids])
        return {job_id: body for job_id, body in zip(job_ids, reply, strict=True) if body is not None}

    async def forget(self, job_ids: Sequence[bytes | str]) -> None:
        """Remove jobs (already stored as dead letters) from Redis for good."""
        keys: list[Any] = [self.queue]
        for job_id in job_ids:
            raw = job_id.encode() if isinstance(job_id, str) else job_id
            keys += [prefix.encode() + raw for prefix in (in_progress_key_prefix, job_key_prefix, retry_key_prefix)]
        await self._forget(keys=keys, args=list(job_ids))
