"""A running job keeps its arq lock short and alive."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from worker.heartbeat import job_lock_heartbeat


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
