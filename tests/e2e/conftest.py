"""The end-to-end rig: a queue of the test's own on the real Redis, a SQLite file, a burst worker."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from arq import Worker
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import Job

import worker.runtime.runner
from events.wire import DEFAULT_JOB_TTL_S, JOB_KEY_PREFIX, loads
from worker import close_db, init_db
from worker.config import Config
from worker.runtime.runner import build_worker


@dataclass
class E2E:
    """One test's queue, database and worker runs; remembers every job id to clean Redis up after."""

    config: Config
    pool: ArqRedis
    monkeypatch: pytest.MonkeyPatch
    job_ids: list[str] = field(default_factory=list)

    @property
    def queue(self) -> str:
        return self.config.queue

    def track(self, job_ids: Iterable[str]) -> list[str]:
        job_ids = list(job_ids)
        self.job_ids.extend(job_ids)
        return job_ids

    async def open_db(self) -> None:
        """Open the managers' database (seeding before a run, reading after it)."""
        await close_db()
        await init_db(self.config.database_url).ensure_schema()

    async def run_worker(self) -> Worker:
        """A burst worker: runs every job queued, returns when the queue is empty."""
        await close_db()  # the worker's startup opens the database itself
        for cron_job in worker.runtime.runner.CRON_JOBS:
            # CronJob objects are module-level: start each worker as a fresh process would.
            self.monkeypatch.setattr(cron_job, "next_run", None)
        arq_worker = build_worker(self.config, burst=True, poll_delay=0.01, handle_signals=False)
        try:
            await arq_worker.main()
        finally:
            await arq_worker.close()
        assert arq_worker.jobs_failed == 0
        assert await self.pool.zcard(self.queue) == 0
        await self.open_db()
        return arq_worker

    async def result(self, job_id: str) -> dict[str, Any]:
        """The job's result as arq's own client reads it (JSON, never pickle)."""
        value = await Job(job_id, self.pool, _queue_name=self.queue, _deserializer=loads).result(timeout=5)
        assert isinstance(value, dict)
        return value

    async def enqueue_raw(self, body: bytes, job_id: str | None = None) -> str:
        """Write a job the way a producer in another language would: a JSON body and a queue entry."""
        job_id = job_id or uuid.uuid4().hex
        await self.pool.set(JOB_KEY_PREFIX + job_id, body, px=DEFAULT_JOB_TTL_S * 1000)
        # The enqueue time in ms, as arq writes it (our worker also runs a job scored 0 or in the past).
        await self.pool.zadd(self.queue, {job_id: int(time.time() * 1000)})
        return self.track([job_id])[0]


@pytest.fixture
async def e2e(redis_url: str, queue_name: str, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[E2E]:
    config = Config(database_url=sqlite_url, redis_url=redis_url, queue=queue_name)
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    env = E2E(config=config, pool=pool, monkeypatch=monkeypatch)
    await env.open_db()
    try:
        yield env
    finally:
        await close_db()
        keys = [queue_name, f"{queue_name}:health-check"]
        for job_id in env.job_ids:
            keys += [f"arq:job:{job_id}", f"arq:result:{job_id}", f"arq:retry:{job_id}", f"arq:in-progress:{job_id}"]
        # The cron job keeps no result; its `arq:in-progress:cron:...` lock expires on its own (job timeout).
        await pool.delete(*keys)
        await pool.aclose()
