"""413 for bodies over `api_max_body_bytes`, declared or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.conftest import AUTH, serve
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
