"""The worker's Lua scripts against real Redis: the same checks and writes as arq's own code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq import Worker
from arq.connections import ArqRedis
from redis.asyncio import Redis

from worker.runtime.claims import Claimed, Finish, JobScripts
from worker.runtime.komas_worker import KomasWorker

KINDS = ("in-progress", "result", "retry", "job")


@pytest.fixture
async def redis(redis_url: str, queue_name: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        keys = [key async for key in client.scan_iter(f"arq:*:{queue_name}-*")]
        await client.delete(queue_name, *keys)
        await client.zrem("arq:abort", *(key.decode().split(":", 2)[2] for key in keys), "none")
        await client.aclose()


async def queue_jobs(redis: Redis, queue: str, scores: dict[str, int], body: bytes = b"{}") -> None:
    for job_id in scores:
        await redis.set(f"arq:job:{job_id}", body)
    await redis.zadd(queue, scores)


async def test_due_free_jobs_are_claimed_in_order_with_their_bodies_and_tries(redis: Redis, queue_name: str) -> None:
    ids = {name: f"{queue_name}-{name}" for name in ("due", "retried", "running", "later", "gone", "expired")}
    await queue_jobs(redis, queue_name, {ids["due"]: 1000, ids["retried"]: 1001, ids["running"]: 1002})
    await redis.zadd(queue_name, {ids["later"]: 10**13, ids["expired"]: 1003})
    await redis.set(f"arq:retry:{ids['retried']}", b"2")
    await redis.set(f"arq:in-progress:{ids['running']}", b"1")  # another worker runs it
    scripts = JobScripts(redis, queue_name)

    claim: dict[str, Any] = {"now_ms": 2000, "lock_ms": 5000, "budget_bytes": 1 << 20, "one_may_exceed": True}
    claimed = await scripts.claim(list(ids.values()), **claim)

    assert claimed == [
        Claimed(ids["due"], 1000, b"{}", 0),
        Claimed(ids["retried"], 1001, b"{}", 2),
        Claimed(ids["expired"], 1003, None, 0),  # queued, its body gone: arq's run_job reports it
    ]
    for job in claimed:
        assert 0 < await redis.pttl(f"arq:in-progress:{job.job_id}") <= 5000
    assert await redis.exists(f"arq:in-progress:{ids['later']}", f"arq:in-progress:{ids['gone']}") == 0
    assert await scripts.claim(list(ids.values()), **claim) == []  # all locked now


async def test_a_claim_stops_at_its_byte_budget(redis: Redis, queue_name: str) -> None:
    ids = [f"{queue_name}-{n}" for n in range(3)]
    await queue_jobs(redis, queue_name, {job_id: 1000 + n for n, job_id in enumerate(ids)}, body=b"x" * 100)
    scripts = JobScripts(redis, queue_name)
    claim: dict[str, Any] = {"now_ms": 2000, "lock_ms": 5000}

    assert await scripts.claim(ids, budget_bytes=50, one_may_exceed=False, **claim) == []
    first = await scripts.claim(ids, budget_bytes=150, one_may_exceed=True, **claim)
    assert [job.job_id for job in first] == ids[:1]  # one over budget when nothing runs, then the budget holds
    rest = await scripts.claim(ids, budget_bytes=250, one_may_exceed=False, **claim)
    assert [job.job_id for job in rest] == ids[1:]


async def test_starting_counts_a_try_of_each_job_for_a_day(redis: Redis, queue_name: str) -> None:
    ids = [f"{queue_name}-a", f"{queue_name}-b"]
    await redis.set(f"arq:retry:{ids[1]}", b"3")
    scripts = JobScripts(redis, queue_name)

    assert await scripts.start(ids) == [1, 4]
    assert 88_000 < await redis.ttl(f"arq:retry:{ids[0]}") <= 88_400


async def noop(ctx: dict[str, Any]) -> None:
    """A function for workers built only to call their finish_job."""


FINISHES = {
    "done, result kept an hour": (True, b'{"r":1}', 3600.0, False, None, None),
    "done, result kept forever": (True, b'{"r":1}', 3600.0, True, None, None),
    "done, no result": (True, None, 3600.0, False, None, None),
    "cron job: lock kept": (True, b'{"r":1}', 3600.0, False, None, 60.0),
    "retry later": (False, None, 3600.0, False, 5000, None),
    "cancelled, run again": (False, None, 3600.0, False, None, None),
}


async def job_state(redis: Redis, queue: str, job_id: str) -> dict[str, Any]:
    """Every key arq keeps of a job, with values and expiries (rounded), the job id left out."""
    found: dict[str, Any] = {}
    for kind in KINDS:
        key = f"arq:{kind}:{job_id}"
        ttl = await redis.pttl(key)
        found[kind] = (await redis.get(key), "none" if ttl < 0 else round(ttl, -4))
    found["queued"] = await redis.zscore(queue, job_id)
    found["abort"] = await redis.zscore("arq:abort", job_id)
    return found


async def running_job(redis: Redis, queue: str, job_id: str) -> None:
    """A job as it is while it runs: locked, tried once, its body queued, an abort request pending."""
    await redis.set(f"arq:in-progress:{job_id}", b"1", px=10_000)
    await redis.set(f"arq:retry:{job_id}", b"1", px=88_400_000)
    await redis.set(f"arq:job:{job_id}", b"{}")
    await redis.zadd(queue, {job_id: 1000})
    await redis.zadd("arq:abort", {job_id: 1})


@pytest.mark.parametrize("finish", list(FINISHES.values()), ids=list(FINISHES))
async def test_finishing_a_job_writes_what_arq_writes(
    redis: Redis, redis_url: str, queue_name: str, finish: tuple[Any, ...]
) -> None:
    """Our one-script finish against arq's own transaction: the same keys, values and expiries."""

    async def run(worker_class: type[Worker], job_id: str) -> dict[str, Any]:
        await running_job(redis, queue_name, job_id)
        worker = worker_class(functions=[noop], queue_name=queue_name, redis_pool=ArqRedis.from_url(redis_url))
        try:
            await worker.finish_job(job_id, *finish)
        finally:
            await worker.pool.aclose()
        return await job_state(redis, queue_name, job_id)

    assert await run(KomasWorker, f"{queue_name}-ours") == await run(Worker, f"{queue_name}-arqs")


async def test_finishing_jobs_together_writes_what_finishing_each_writes(redis: Redis, queue_name: str) -> None:
    scripts = JobScripts(redis, queue_name)
    ends = [Finish(f"{queue_name}-{n}", *finish) for n, finish in enumerate(FINISHES.values())]
    for end in ends:
        await running_job(redis, queue_name, end.job_id)
    await scripts.finish(ends)
    together = [await job_state(redis, queue_name, end.job_id) for end in ends]

    for end in ends:
        await running_job(redis, queue_name, end.job_id)
        await scripts.finish([end])
    assert together == [await job_state(redis, queue_name, end.job_id) for end in ends]
