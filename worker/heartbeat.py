"""Keeps a running job's arq in-progress lock short and alive.

arq locks a running job for its timeout + 10 s; a worker killed mid-job would leave the job
waiting that long. The job instead holds a lock of `lock_ttl_s`, renewed every third of it, so a
long batch keeps its lock while a killed worker's job runs again within `lock_ttl_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from arq.constants import in_progress_key_prefix

log = logging.getLogger("komas.worker")


async def _renew_once(redis: Any, key: str, ttl_ms: int) -> None:
    try:
        await redis.pexpire(key, ttl_ms)
    except Exception as exc:  # Redis away: the job goes on; arq re-runs it if the lock lapses
        log.warning("could not renew the lock %s: %s", key, exc)


async def _renew(redis: Any, key: str, ttl_ms: int) -> None:
    while True:
        await asyncio.sleep(ttl_ms / 3000)
        await _renew_once(redis, key, ttl_ms)


@contextlib.asynccontextmanager
async def job_lock_heartbeat(ctx: dict[str, Any], lock_ttl_s: int) -> AsyncIterator[None]:
    """While the block runs, keep `arq:in-progress:<job_id>` alive with a short TTL."""
    redis, job_id = ctx.get("redis"), ctx.get("job_id")
    if redis is None or job_id is None:  # called outside arq (unit tests)
        yield
        return
    key, ttl_ms = in_progress_key_prefix + str(job_id), lock_ttl_s * 1000
    if not ctx.get("short_lock"):  # plain arq set timeout + 10 s: shorten it before any work
        await _renew_once(redis, key, ttl_ms)
    task = asyncio.create_task(_renew(redis, key, ttl_ms))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
