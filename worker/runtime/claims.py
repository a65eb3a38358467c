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

from worker.runtime.lua import lua

#: See `lua/claim_jobs.lua` (its keys, arguments and why).
CLAIM_JOBS = lua("claim_jobs")

#: See `lua/start_tries.lua` (its keys, arguments and why).
START_TRIES = lua("start_tries")

#: See `lua/finish_jobs.lua` (its keys, arguments and why).
FINISH_JOBS = lua("finish_jobs")


#: See `lua/take_foreign.lua` (its keys, arguments and why).
TAKE_FOREIGN = lua("take_foreign")

#: See `lua/forget_jobs.lua` (its keys, arguments and why).
FORGET_JOBS = lua("forget_jobs")

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
