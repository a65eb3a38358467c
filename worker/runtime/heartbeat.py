"""Keeps a running job's arq in-progress lock short and alive.

arq locks a running job for its timeout + 10 s; a worker killed mid-job would leave the job
waiting that long. The job instead holds a lock of `lock_ttl_s`, renewed every third of it, so a
long batch keeps its lock while a killed worker's job runs again within `lock_ttl_s`. Jobs the
worker starts together share one renewal (`locks_kept_alive`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from arq.constants import in_progress_key_prefix

log = logging.getLogger("komas.worker")

#: Set in a job's context when whoever started it renews its lock (the worker, for jobs started together).
LOCK_KEPT = "lock_kept"


async def _renew_once(redis: Any, job_ids: Sequence[str], ttl_ms: int) -> None:
    keys = [in_progress_key_prefix + job_id for job_id in job_ids]
    if not keys:
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.pexpire(key, ttl_ms)
            await pipe.execute()
    except Exception as exc:  # Redis away: the job goes on; arq re-runs it if the lock lapses
        log.warning("could not renew the lock %s: %s", ", ".join(keys), exc)


async def _renew(redis: Any, job_ids: Sequence[str], ttl_ms: int) -> None:
    while True:
        await asyncio.sleep(ttl_ms / 3000)
        await _renew_once(redis, job_ids, ttl_ms)


@contextlib.asynccontextmanager
async def locks_kept_alive(redis: Any, job_ids: Sequence[str], lock_ttl_s: float) -> AsyncIterator[None]:
    """While the block runs, renew the in-progress locks of these jobs every third of `lock_ttl_s`.

    `job_ids` is read at each renewal: a caller may remove the jobs it has ended.
    """
    task = asyncio.create_task(_renew(redis, job_ids, round(lock_ttl_s * 1000)))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def job_lock_heartbeat(ctx: dict[str, Any], lock_ttl_s: int) -> AsyncIterator[None]:
    """While the block runs, keep `arq:in-progress:<job_id>` alive with a short TTL."""
    redis, job_id = ctx.get("redis"), ctx.get("job_id")
    if redis is None or job_id is None or ctx.get(LOCK_KEPT):  # outside arq (unit tests), or renewed already
        yield
        return
    if not ctx.get("short_lock"):  # plain arq set timeout + 10 s: shorten it before any work
        await _renew_once(redis, [str(job_id)], lock_ttl_s * 1000)
    async with locks_kept_alive(redis, [str(job_id)], lock_ttl_s):
        yield
