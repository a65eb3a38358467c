"""Asking the running worker to do something and waiting for its answer (CLI and API side).

The only way the API and the CLI reach arq: its pool, job handles and results come from here, so
arq stays inside `worker.runtime` (and a later queue library changes this module, not its callers).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.jobs import Job, ResultNotFound

from events.wire import dumps, loads
from worker.config import Config

__all__ = [
    "Job",
    "QueuePool",
    "ResultGone",
    "ResultNotFound",
    "WorkerDidNotAnswer",
    "arq_pool",
    "call_worker",
    "job_handle",
    "job_result",
    "queue_depth_and_age",
    "queue_pool",
]

#: A Redis client that also queues jobs (arq's), JSON both ways: what the API holds for its lifetime.
QueuePool = ArqRedis


async def queue_depth_and_age(redis: Any, queue: str) -> tuple[int, float | None]:
    """Jobs waiting in `queue` and the age in seconds of the oldest (None: empty), by its score."""
    depth = int(await redis.zcard(queue))
    oldest = await redis.zrange(queue, 0, 0, withscores=True)
    return depth, (max(0.0, time.time() - oldest[0][1] / 1000) if oldest else None)


def queue_pool(config: Config, *, connect_timeout_s: float = 2, timeout_s: float = 10) -> QueuePool:
    """A pool for the queue that connects on first use (the API starts while Redis is still down)."""
    pool: ArqRedis = ArqRedis.from_url(
        config.redis_url, socket_connect_timeout=connect_timeout_s, socket_timeout=timeout_s
    )
    # The same JSON serializer as the Publisher and the worker (never pickle).
    pool.job_serializer = dumps
    pool.job_deserializer = loads
    pool.default_queue_name = config.queue
    return pool


def job_handle(pool: QueuePool, job_id: str, queue: str) -> Job:
    """A handle on a job by its id, to wait for its result (JSON, as the worker writes it)."""
    return Job(job_id, pool, _queue_name=queue, _deserializer=pool.job_deserializer or loads)


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
