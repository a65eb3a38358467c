"""KomasWorker on real Redis: jobs started together in units, the rest through arq's run_job, arq's outcomes kept."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq import Retry, Worker, func
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import Job, JobStatus

from events.wire import dumps, loads
from worker.config import Config
from worker.runtime.claims import JobScripts
from worker.runtime.heartbeat import LOCK_KEPT
from worker.runtime.komas_worker import INFLIGHT_MAX_BYTES, KomasWorker
from worker.runtime.runner import build_worker

#: What each test function saw of its context: (job id, job try, lock renewed by the worker).
seen: list[tuple[str, int, bool]] = []


def note(ctx: dict[str, Any]) -> None:
    seen.append((ctx["job_id"], ctx["job_try"], bool(ctx.get(LOCK_KEPT))))


async def double(ctx: dict[str, Any], value: int) -> int:
    note(ctx)
    return value * 2


async def retry_later(ctx: dict[str, Any]) -> None:
    note(ctx)
    raise Retry(defer=60)


async def fails(ctx: dict[str, Any]) -> None:
    note(ctx)
    raise ValueError("refused")


#: Set once this many `hangs` jobs are running.
hanging: tuple[int, asyncio.Event] | None = None


async def hangs(ctx: dict[str, Any]) -> None:
    note(ctx)
    if hanging is not None and len(seen) >= hanging[0]:
        hanging[1].set()
    await asyncio.Event().wait()


FUNCTIONS: list[Any] = [double, retry_later, fails, func(hangs, timeout=0.2)]


@pytest.fixture
async def pool(redis_url: str, queue_name: str) -> AsyncIterator[ArqRedis]:
    seen.clear()
    redis = await create_pool(
        RedisSettings.from_dsn(redis_url), job_serializer=dumps, job_deserializer=loads, default_queue_name=queue_name
    )
    try:
        yield redis
    finally:
        keys = [key async for key in redis.scan_iter(f"arq:*:{queue_name}-*")]
        await redis.delete(queue_name, *keys)
        await redis.aclose()


def komas_worker_on(pool: ArqRedis, queue: str, **options: Any) -> KomasWorker:
    options = {"burst": True, "poll_delay": 0.01, "handle_signals": False, "max_jobs": 10, **options}
    return KomasWorker(
        functions=FUNCTIONS, queue_name=queue, redis_pool=pool, job_serializer=dumps, job_deserializer=loads, **options
    )


async def enqueue(pool: ArqRedis, queue: str, function: str, *args: Any, name: str) -> str:
    job = await pool.enqueue_job(function, *args, _job_id=f"{queue}-{name}")
    assert job is not None
    return job.job_id


async def leftovers(pool: ArqRedis, job_id: str) -> list[str]:
    """The keys of a job other than its result: none once it has ended."""
    keys = [f"arq:{kind}:{job_id}" for kind in ("in-progress", "retry", "job")]
    return [key for key in keys if await pool.exists(key)]


async def test_first_try_jobs_run_together_and_end_in_one_script(
    pool: ArqRedis, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: dict[str, list[int]] = {"start": [], "finish": []}
    start, finish = JobScripts.start, JobScripts.finish

    async def counted_start(self: JobScripts, job_ids: Any) -> list[int]:
        calls["start"].append(len(job_ids))
        return await start(self, job_ids)

    async def counted_finish(self: JobScripts, ends: Any) -> None:
        calls["finish"].append(len(ends))
        await finish(self, ends)

    monkeypatch.setattr(JobScripts, "start", counted_start)
    monkeypatch.setattr(JobScripts, "finish", counted_finish)
    ids = [await enqueue(pool, queue_name, "double", n, name=str(n)) for n in range(4)]
    worker = komas_worker_on(pool, queue_name)

    await worker.main()

    assert calls == {"start": [4], "finish": [4]}
    assert sorted(seen) == sorted((job_id, 1, True) for job_id in ids)
    assert worker.jobs_complete == 4
    for n, job_id in enumerate(ids):
        job = Job(job_id, pool, _queue_name=queue_name, _deserializer=loads)
        assert await job.result(timeout=1) == n * 2  # what arq's own client reads
        assert await leftovers(pool, job_id) == []
    assert worker.job_counter == 0


async def test_retried_and_expired_jobs_run_through_arqs_own_run_job(pool: ArqRedis, queue_name: str) -> None:
    retried = await enqueue(pool, queue_name, "double", 5, name="retried")
    await pool.set(f"arq:retry:{retried}", b"1")  # its first run was cut short (a killed worker)
    expired = f"{queue_name}-expired"
    await pool.zadd(queue_name, {expired: int(time.time() * 1000)})  # queued, its body gone
    worker = komas_worker_on(pool, queue_name)

    await worker.main()

    assert seen == [(retried, 2, False)]  # arq counted the try; the job renewed its own lock
    assert await Job(retried, pool, _queue_name=queue_name, _deserializer=loads).result(timeout=1) == 10
    assert (worker.jobs_complete, worker.jobs_failed) == (1, 1)  # arq: "job expired"
    assert await pool.zcard(queue_name) == 0


async def test_unit_jobs_end_as_arq_ends_them(pool: ArqRedis, queue_name: str) -> None:
    later = await enqueue(pool, queue_name, "retry_later", name="later")
    failed = await enqueue(pool, queue_name, "fails", name="failed")
    slow = await enqueue(pool, queue_name, "hangs", name="slow")
    fine = await enqueue(pool, queue_name, "double", 1, name="fine")
    worker = komas_worker_on(pool, queue_name, max_burst_jobs=4)
    before = time.time() * 1000

    await worker.main()

    assert (worker.jobs_complete, worker.jobs_failed, worker.jobs_retried) == (1, 2, 1)
    # Retry: still queued, deferred by about its 60 s, its lock released, its try counted.
    score = await pool.zscore(queue_name, later)
    assert score is not None
    assert score > before + 50_000
    assert await leftovers(pool, later) == [f"arq:retry:{later}", f"arq:job:{later}"]
    # An exception and a timeout are terminal for arq: a failed result, nothing left queued.
    for job_id, text in ((failed, "refused"), (slow, "")):  # the JSON record holds the exception's text
        info = await Job(job_id, pool, _queue_name=queue_name, _deserializer=loads).result_info()
        assert info is not None
        assert info.success is False
        assert info.result == text
        assert await leftovers(pool, job_id) == []
        assert await Job(job_id, pool, _queue_name=queue_name).status() == JobStatus.complete
    assert await Job(fine, pool, _queue_name=queue_name, _deserializer=loads).result(timeout=1) == 2


async def test_a_stopping_worker_puts_its_running_unit_back(
    pool: ArqRedis, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [await enqueue(pool, queue_name, "hangs", name=str(n)) for n in range(2)]
    worker = komas_worker_on(pool, queue_name)
    monkeypatch.setitem(worker.functions, "hangs", dataclasses.replace(worker.functions["hangs"], timeout_s=60))
    both_running = asyncio.Event()
    monkeypatch.setattr(sys.modules[__name__], "hanging", (2, both_running))

    await worker.start_jobs([job_id.encode() for job_id in ids])
    unit = worker.tasks[ids[0]]
    assert worker.tasks[ids[1]] is unit
    await asyncio.wait_for(both_running.wait(), 10)
    unit.cancel()
    with pytest.raises(asyncio.CancelledError):
        await unit

    assert worker.jobs_retried == 2
    assert worker.job_counter == 0
    for job_id in ids:  # queued again, unlocked: the next worker runs it (its try counted)
        assert await pool.zscore(queue_name, job_id) is not None
        assert await leftovers(pool, job_id) == [f"arq:retry:{job_id}", f"arq:job:{job_id}"]


async def test_a_slow_job_does_not_hold_back_the_others_of_its_unit(
    pool: ArqRedis, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = await enqueue(pool, queue_name, "double", 21, name="quick")
    slow = await enqueue(pool, queue_name, "hangs", name="slow")
    worker = komas_worker_on(pool, queue_name)
    monkeypatch.setitem(worker.functions, "hangs", dataclasses.replace(worker.functions["hangs"], timeout_s=60))

    await worker.start_jobs([quick.encode(), slow.encode()])
    unit = worker.tasks[quick]
    assert worker.tasks[slow] is unit

    # Ended (its result readable, its keys gone) while the other job of its unit still runs.
    assert await Job(quick, pool, _queue_name=queue_name, _deserializer=loads).result(timeout=5) == 42
    assert await leftovers(pool, quick) == []
    assert not unit.done()
    assert await pool.exists(f"arq:in-progress:{slow}")
    unit.cancel()
    with pytest.raises(asyncio.CancelledError):
        await unit
    assert (worker.jobs_complete, worker.jobs_retried) == (1, 1)


async def test_jobs_running_here_are_not_asked_about_and_a_refused_claim_takes_no_slot(
    pool: ArqRedis, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[list[str]] = []
    claim = JobScripts.claim

    async def spied(self: JobScripts, job_ids: Any, **options: Any) -> Any:
        asked.append(list(job_ids))
        return await claim(self, job_ids, **options)

    monkeypatch.setattr(JobScripts, "claim", spied)
    here, elsewhere, new = [await enqueue(pool, queue_name, "double", n, name=name) for n, name in enumerate("abc")]
    await pool.set(f"arq:in-progress:{elsewhere}", b"1", px=10_000)  # another worker runs it
    worker = komas_worker_on(pool, queue_name)
    running: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    worker.tasks[here] = running  # type: ignore[assignment]

    await worker.start_jobs([here.encode(), elsewhere.encode(), new.encode()])

    assert asked == [[elsewhere, new]]  # no round trip about the job running here
    assert worker.job_counter == 1  # only the claimed one took a slot
    await worker.tasks[new]
    assert worker.job_counter == 0
    running.cancel()


async def test_no_job_is_claimed_while_the_running_ones_hold_the_byte_budget(pool: ArqRedis, queue_name: str) -> None:
    job_id = await enqueue(pool, queue_name, "double", 1, name="waits")
    worker = komas_worker_on(pool, queue_name)
    worker.job_counter, worker._bytes_running = 1, INFLIGHT_MAX_BYTES

    await worker.start_jobs([job_id.encode()])

    assert worker.tasks == {}
    assert not await pool.exists(f"arq:in-progress:{job_id}")
    worker.job_counter, worker._bytes_running = 0, 0
    await worker.start_jobs([job_id.encode()])  # nothing runs: taken whatever its size
    await asyncio.gather(*worker.tasks.values())
    assert worker.jobs_complete == 1


async def test_the_pause_between_polls_grows_while_idle_and_short_while_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    arrivals = iter([0, 0, 0, 0, 0, 0, 1, 0])  # jobs found by each poll

    async def poll_once(self: Worker) -> None:
        self.jobs_complete += next(arrivals)

    async def sleep(delay: float) -> None:
        pauses.append(round(delay, 4))

    monkeypatch.setattr(Worker, "_poll_iteration", poll_once)
    worker = build_worker(Config(queue="komas:test:poll", poll_delay_s=0.05), burst=True)
    monkeypatch.setattr(asyncio, "sleep", sleep)
    for _ in range(8):
        await worker._poll_iteration()

    # Extra pause on top of arq's 2 ms: doubling while idle, capped at the idle delay; none after a job started.
    assert pauses == [0.002, 0.006, 0.014, 0.03, 0.048, 0.048, 0.002]
