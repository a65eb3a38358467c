"""The worker's arq settings and its one change to arq's Worker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from arq import Worker
from arq.connections import ArqRedis

from worker.config import Config
from worker.runner import BUSY_POLL_DELAY_S, KomasWorker, build_worker


async def test_jobs_running_here_are_skipped_and_new_ones_claimed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    claimed: list[str] = []
    started: list[tuple[str, int]] = []

    async def claim(keys: list[str], args: list[Any]) -> Any:
        claimed.append(args[0])
        return b"1700000000000" if args[0] != "taken" else 0  # "taken": running in another worker

    async def run_job(self: Worker, job_id: str, score: int) -> None:
        started.append((job_id, score))

    monkeypatch.setattr(KomasWorker, "run_job", run_job)
    worker = build_worker(Config(queue="komas:test:runner"), burst=True)
    assert isinstance(worker, KomasWorker)
    worker._claim = claim  # type: ignore[assignment]
    running: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    worker.tasks["running"] = running  # type: ignore[assignment]

    await worker.start_jobs([b"running", b"taken", b"new"])
    await asyncio.gather(*(task for job_id, task in worker.tasks.items() if job_id != "running"))

    assert claimed == ["taken", "new"]  # no round trip for the job running here
    assert started == [("new", 1700000000000)]
    assert worker.job_counter == 0  # the refused claim gave its slot back; the started job finished
    running.cancel()


async def test_the_claim_script_takes_a_due_job_once(redis_url: str, queue_name: str) -> None:
    """Against real Redis: claimed when due and free; not when running, not yet due, or gone."""
    from redis.asyncio import Redis

    from worker.runner import CLAIM_JOB

    redis = Redis.from_url(redis_url)
    try:
        claim = redis.register_script(CLAIM_JOB)
        lock = f"arq:in-progress:{queue_name}:job"
        await redis.zadd(queue_name, {"due": 1000, "later": 10**13})
        args = {"keys": [lock, queue_name]}
        assert await claim(args=["due", 2000, 5000], **args) == b"1000"
        assert await redis.pttl(lock) > 0
        assert await claim(args=["due", 2000, 5000], **args) == 0  # locked now
        assert await claim(args=["later", 2000, 5000], keys=[lock + "2", queue_name]) == 0  # not due
        assert await claim(args=["gone", 2000, 5000], keys=[lock + "3", queue_name]) == 0  # not queued
    finally:
        await redis.delete(queue_name, f"arq:in-progress:{queue_name}:job")
        await redis.aclose()


def test_worker_options_follow_the_configuration() -> None:
    config = Config(queue="q", max_jobs=7, poll_delay_s=0.02, lock_ttl_s=6)
    worker = build_worker(config, burst=True)
    assert isinstance(worker, KomasWorker)
    assert (worker.queue_name, worker.max_jobs) == ("q", 7)
    assert (worker.poll_delay_s, worker.idle_poll_delay_s) == (BUSY_POLL_DELAY_S, 0.02)
    assert worker.in_progress_timeout_s == 6  # a killed worker's job runs again after the short lock
    assert worker.log_results is False


def test_gc_is_tuned_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from worker.runner import GC_YOUNG_THRESHOLD, tune_gc

    freezes: list[int] = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(1))  # freezing the test process would be permanent
    original = gc.get_threshold()
    gc.set_threshold(700, *original[1:])
    try:
        tune_gc()
        tune_gc()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *original[1:])
        assert freezes == [1]
    finally:
        gc.set_threshold(*original)


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


@pytest.mark.parametrize("finish", list(FINISHES.values()), ids=list(FINISHES))
async def test_finishing_a_job_writes_what_arq_writes(redis_url: str, queue_name: str, finish: tuple[Any, ...]) -> None:
    """Our one-script finish against arq's own transaction, on real Redis: the same keys, values and expiries."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)

    async def state(job_id: str) -> dict[str, Any]:
        keys = [f"arq:{kind}:{job_id}" for kind in ("in-progress", "result", "retry", "job")]
        found: dict[str, Any] = {}
        for key in keys:
            ttl = await redis.pttl(key)
            found[key.replace(job_id, "ID")] = (await redis.get(key), "none" if ttl < 0 else round(ttl, -4))
        found["queued"] = await redis.zscore(queue_name, job_id)
        found["abort"] = await redis.zscore("arq:abort", job_id)
        return found

    async def run(worker_class: type[Worker], job_id: str) -> dict[str, Any]:
        await redis.set(f"arq:in-progress:{job_id}", b"1", px=10_000)
        await redis.set(f"arq:retry:{job_id}", b"1", px=88_400_000)
        await redis.set(f"arq:job:{job_id}", b"{}")
        await redis.zadd(queue_name, {job_id: 1000})
        await redis.zadd("arq:abort", {job_id: 1})
        worker = worker_class(functions=[noop], queue_name=queue_name, redis_pool=ArqRedis.from_url(redis_url))
        try:
            await worker.finish_job(job_id, *finish)
        finally:
            await worker.pool.aclose()
        return await state(job_id)

    try:
        assert await run(KomasWorker, "ours") == await run(Worker, "arqs")
    finally:
        for job_id in ("ours", "arqs"):
            await redis.delete(*(f"arq:{kind}:{job_id}" for kind in ("in-progress", "result", "retry", "job")))
            await redis.zrem("arq:abort", job_id)
        await redis.delete(queue_name)
        await redis.aclose()
