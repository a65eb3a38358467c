"""A running job keeps its arq lock short and alive."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from worker.runtime.heartbeat import job_lock_heartbeat


async def test_the_lock_is_shortened_at_once_and_kept_alive(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    job_id = uuid.uuid4().hex
    key = f"arq:in-progress:{job_id}"
    try:
        await client.psetex(key, 310_000, b"1")  # what arq sets: job_timeout + 10 s
        async with job_lock_heartbeat({"redis": client, "job_id": job_id}, lock_ttl_s=3):
            ttl_inside = await client.pttl(key)
        assert 0 < ttl_inside <= 3000
    finally:
        await client.delete(key)
        await client.aclose()


async def test_without_arq_context_it_is_a_no_op() -> None:
    async with job_lock_heartbeat({}, lock_ttl_s=3):
        entered = True
    assert entered


async def test_the_scheduled_retry_of_parked_events_holds_its_lock_too(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long pass is not picked up a second time: its short lock is shortened and renewed like any job's."""
    import worker.runtime.jobs
    from worker.config import Config

    client = aioredis.Redis.from_url(redis_url)
    job_id = uuid.uuid4().hex
    key = f"arq:in-progress:{job_id}"
    seen: list[int] = []

    async def slow_pass(*_args: Any, **_kwargs: Any) -> dict[str, int]:
        seen.append(await client.pttl(key))
        return {"applied": 0, "parked": 0, "dead": 0}

    monkeypatch.setattr(worker.runtime.jobs, "retry_parked", slow_pass)
    try:
        await client.psetex(key, 70_000, b"1")  # arq's lock for the cron job: its timeout + 10 s
        ctx = {"redis": client, "job_id": job_id, "config": Config(lock_ttl_s=3)}
        await worker.runtime.jobs.retry_parked_job(ctx)
    finally:
        await client.delete(key)
        await client.aclose()
    assert len(seen) == 1
    assert 0 < seen[0] <= 3000


async def test_jobs_started_together_share_a_renewal_that_drops_the_ended_ones(redis_url: str) -> None:
    from worker.runtime.heartbeat import locks_kept_alive

    client = aioredis.Redis.from_url(redis_url)
    ids = [uuid.uuid4().hex, uuid.uuid4().hex]
    keys = [f"arq:in-progress:{job_id}" for job_id in ids]
    try:
        for key in keys:
            await client.psetex(key, 300, b"1")
        renewing = list(ids)
        async with locks_kept_alive(client, renewing, lock_ttl_s=0.3):  # renewed every 0.1 s
            renewing.remove(ids[1])  # ended: no longer renewed, its lock lapses
            deadline = time.monotonic() + 5
            while await client.exists(keys[1]):
                assert time.monotonic() < deadline, "the ended job's lock was still renewed"
                await asyncio.sleep(0.02)
            assert await client.exists(keys[0])  # outlived its first 300 ms: renewed
    finally:
        await client.delete(*keys)
        await client.aclose()
