"""Fixtures of the API tests: the app on a fresh SQLite file and a queue of its own on the real Redis,
an httpx client driving it in-process (lifespan included), and a real arq worker running meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from arq import Worker
from fastapi import FastAPI
from redis.asyncio import Redis

from worker.api import create_app
from worker.config import Config
from worker.runtime.runner import build_worker
from worker.store.db import close_db, init_db

T = TypeVar("T")
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def with_id(event: dict[str, Any]) -> dict[str, Any]:
    """A raw event as a producer sends it: with its own `event_id` (required on the wire)."""
    return {"event_id": str(uuid.uuid4()), **event}


#: Where the in-process clients send their requests: a loopback Host, as a local client's would be.
LOOPBACK = "http://127.0.0.1:8000"


async def migrate(url: str) -> None:
    """Create the schema the way the worker does at start, then let go of the database."""
    await init_db(url).ensure_schema()
    await close_db()


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 10.0) -> T:
    """Poll `check` until it returns something (not None) or the deadline passes: no fixed sleeps."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)


@pytest.fixture
def config(redis_url: str, queue_name: str, sqlite_url: str) -> Config:
    """The API's configuration: a token for writes, a short wait for the worker."""
    return Config(database_url=sqlite_url, redis_url=redis_url, queue=queue_name, api_token=TOKEN, api_wait_s=10)


@pytest.fixture
async def migrated(config: Config) -> Config:
    await migrate(config.database_url)
    return config


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give a client that talks to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=LOOPBACK) as client:
            yield client


@pytest.fixture
async def client(migrated: Config) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(migrated)) as client:
        yield client


@dataclass
class RunningWorker:
    worker: Worker
    task: asyncio.Task[None]


async def stop_gracefully(arq_worker: Worker, task: asyncio.Task[Any]) -> None:
    """Stop taking jobs and let the running ones finish: `close()` alone would cancel them mid-commit."""
    arq_worker.allow_pick_jobs = False
    await asyncio.gather(*arq_worker.tasks.values(), return_exceptions=True)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await arq_worker.close()


@contextlib.asynccontextmanager
async def run_worker(config: Config) -> AsyncIterator[RunningWorker]:
    """The worker `komas worker` runs, as a task of this event loop, until the block ends."""
    arq_worker = build_worker(config, poll_delay=0.01, handle_signals=False, keep_result=60)
    task = asyncio.create_task(arq_worker.main())
    try:
        yield RunningWorker(arq_worker, task)
    finally:
        await stop_gracefully(arq_worker, task)
        await close_db()
        assert arq_worker.jobs_failed == 0


@pytest.fixture
async def worker(migrated: Config) -> AsyncIterator[RunningWorker]:
    async with run_worker(migrated) as running:
        yield running


@pytest.fixture(autouse=True)
async def _clean_queue(redis_url: str, queue_name: str) -> AsyncIterator[None]:
    """Leave nothing of this test's queue in the shared Redis (results expire on their own in 60 s)."""
    yield
    client: Redis = Redis.from_url(redis_url)
    try:
        job_ids = [job_id.decode() for job_id in await client.zrange(queue_name, 0, -1)]
        keys = [queue_name, f"{queue_name}:health-check"] + [f"arq:job:{job_id}" for job_id in job_ids]
        keys += [key async for key in client.scan_iter(match=f"{queue_name}:api:*")]  # idempotency records
        await client.delete(*keys)
    finally:
        await client.aclose()


def json_of(response: httpx.Response) -> Any:
    """The body, with the status in the message when an assertion on it fails."""
    assert response.headers.get("content-type", "").startswith("application/json"), response.text
    return response.json()
