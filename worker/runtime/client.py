"""Asking the running worker to do something and waiting for its answer (CLI and API side)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.jobs import Job, ResultNotFound

from events.wire import dumps, loads
from worker.config import Config


class WorkerDidNotAnswer(TimeoutError):
    """The job is queued, but no worker finished it in time; it runs when a worker is up."""

    def __init__(self, job_id: str, timeout: float) -> None:
        super().__init__(
            f"job {job_id} is queued, but no worker finished it within {timeout:g}s; "
            "it will run when a worker is up (start one with `komas worker`)"
        )
        self.job_id = job_id


@asynccontextmanager
async def arq_pool(config: Config) -> AsyncIterator[ArqRedis]:
    settings = RedisSettings.from_dsn(config.redis_url)
    settings.conn_retries = 0
    pool = await create_pool(settings, job_serializer=dumps, job_deserializer=loads, default_queue_name=config.queue)
    try:
        yield pool
    finally:
        await pool.aclose()


class ResultGone(LookupError):
    """The job is neither queued nor answered: it ran, and its result is no longer kept."""


async def job_result(pool: ArqRedis, queue: str, job_id: str, timeout: float) -> Any:
    """Wait for the result of a queued job (polling Redis); `WorkerDidNotAnswer` when none comes in `timeout` s."""
    job = Job(job_id, pool, _queue_name=queue, _deserializer=loads)
    try:
        return await job.result(timeout=max(timeout, 0.0), poll_delay=0.05)
    except TimeoutError:
        raise WorkerDidNotAnswer(job_id, timeout) from None
    except ResultNotFound:
        raise ResultGone(f"job {job_id} ran, but its result is no longer kept") from None


async def call_worker(config: Config, function: str, *args: Any, timeout: float = 30.0) -> Any:
    """Enqueue `function(*args)` for the worker and return its result."""
    async with arq_pool(config) as pool:
        job = await pool.enqueue_job(function, *args, _queue_name=config.queue, _expires=config.job_ttl_s)
        assert job is not None  # a fresh random job id never collides
        return await job_result(pool, config.queue, job.job_id, timeout)
