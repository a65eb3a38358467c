"""413 for bodies over `api_max_body_bytes`, declared or streamed, and for events over `max_event_bytes`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from tests.api.conftest import AUTH, RunningWorker, serve
from worker.api import create_app
from worker.config import Config

LIMIT = 1000


@pytest.fixture
async def small(migrated: Config) -> AsyncIterator[httpx.AsyncClient]:
    config = migrated.model_copy(update={"api_max_body_bytes": LIMIT, "api_wait_s": 0.05})
    async with serve(create_app(config)) as client:
        yield client


def body_of(size: int) -> bytes:
    return b'{"key": "k", "value": "' + b"x" * size + b'"}'


async def test_declared_length_over_the_limit_is_413(small: httpx.AsyncClient) -> None:
    response = await small.post(
        "/api/db/settings", content=body_of(LIMIT), headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "1000 bytes" in response.json()["detail"]


async def test_streamed_body_without_length_is_counted(small: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 200  # JSON whitespace: valid, just too long

    response = await small.post("/api/events", content=chunks(), headers={**AUTH, "content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_body_under_the_limit_passes(small: httpx.AsyncClient) -> None:
    response = await small.post(
        "/api/db/settings", content=body_of(100), headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 202  # accepted and queued (no worker here)


async def test_the_limit_applies_before_auth(small: httpx.AsyncClient) -> None:
    """A large body is refused without being read, whoever sends it."""
    response = await small.post("/api/events", content=body_of(5000), headers={"content-type": "application/json"})
    assert response.status_code == 413


EVENT_LIMIT = 4096


@pytest.fixture
async def small_events(migrated: Config) -> AsyncIterator[httpx.AsyncClient]:
    """Bodies up to 1 MiB, events up to 4 KiB (KOMAS_MAX_EVENT_BYTES, which the worker enforces too)."""
    config = migrated.model_copy(update={"max_event_bytes": EVENT_LIMIT})
    async with serve(create_app(config)) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/db/settings", {"key": "big", "value": "x" * EVENT_LIMIT}),
        ("/api/db/presets", {"name": "big", "settings": {"blob": "x" * EVENT_LIMIT}}),
        ("/api/events", {"type": "settings.set", "key": "big", "value": "x" * EVENT_LIMIT}),
        (
            "/api/events",
            [
                {"type": "settings.set", "key": "ok", "value": 1},
                {"type": "settings.set", "key": "big", "value": "x" * EVENT_LIMIT},
            ],
        ),
    ],
)
async def test_an_event_over_the_limit_is_413_before_anything_is_queued(
    small_events: httpx.AsyncClient, path: str, body: object, redis_url: str, queue_name: str
) -> None:
    """Never queued to be dead-lettered by the worker (which kept the whole payload as a dead letter)."""
    response = await small_events.post(path, json=body, headers=AUTH)
    assert response.status_code == 413, response.text
    assert "KOMAS_MAX_EVENT_BYTES" in response.json()["detail"]
    queue: Redis = Redis.from_url(redis_url)
    try:
        assert await queue.zcard(queue_name) == 0
    finally:
        await queue.aclose()
    assert (await small_events.get("/api/db/dead-letters")).json()["total"] == 0


async def test_an_event_just_under_the_limit_applies(small_events: httpx.AsyncClient, worker: RunningWorker) -> None:
    response = await small_events.post("/api/db/settings", json={"key": "k", "value": "x" * 3000}, headers=AUTH)
    assert response.status_code == 201, response.text
