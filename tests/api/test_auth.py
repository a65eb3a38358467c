"""Bearer token on writes (and reads when asked), and where the API may listen without one."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from tests.api.conftest import AUTH, TOKEN, serve
from worker.api import create_app
from worker.api.auth import check_bind_allowed, is_loopback
from worker.config import Config


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_is_allowed_without_a_token(host: str) -> None:
    assert is_loopback(host)
    check_bind_allowed(host, Config())


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com", ""])
def test_anything_else_needs_a_token(host: str) -> None:
    with pytest.raises(ValueError, match="KOMAS_API_TOKEN"):
        check_bind_allowed(host, Config())
    check_bind_allowed(host, Config(api_token=SecretStr("t")))


WRITES = [
    ("POST", "/api/db/settings", {"key": "k", "value": 1}),
    ("DELETE", "/api/db/settings/k", None),
    ("POST", "/api/db/presets", {"name": "p"}),
    ("PUT", "/api/db/presets/1", {"name": "p"}),
    ("PUT", "/api/db/presets/1/performance", {}),
    ("POST", "/api/db/presets/1/favorite", None),
    ("DELETE", "/api/db/presets/1", None),
    ("DELETE", "/api/db/cache/BTCUSDT/1h", None),
    ("POST", "/api/events", {"type": "bot.toggled", "bot_id": 1, "active": True}),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
async def test_every_write_needs_the_token(
    client: httpx.AsyncClient, method: str, path: str, body: object, redis_url: str, queue_name: str
) -> None:
    missing = await client.request(method, path, json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["detail"] == "missing bearer token"
    wrong = await client.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["detail"] == "wrong bearer token"
    basic = await client.request(method, path, json=body, headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    queued: Redis = Redis.from_url(redis_url)
    try:
        assert await queued.zcard(queue_name) == 0  # refused before anything was queued
    finally:
        await queued.aclose()


async def test_reads_are_open_unless_configured(client: httpx.AsyncClient, migrated: Config) -> None:
    assert (await client.get("/api/db/presets")).status_code == 200
    async with serve(create_app(migrated.model_copy(update={"api_token_reads": True}))) as strict:
        assert (await strict.get("/api/db/presets")).status_code == 401
        assert (await strict.get("/api/db/signals", headers={"Authorization": "Bearer x"})).status_code == 401
        assert (await strict.get("/api/db/presets", headers=AUTH)).status_code == 200


async def test_without_a_token_configured_writes_are_open(migrated: Config) -> None:
    """Only on loopback (`check_bind_allowed`); the write is queued (202, no worker here)."""
    config = migrated.model_copy(update={"api_token": None, "api_wait_s": 0.05})
    async with serve(create_app(config)) as client:
        response = await client.post("/api/db/settings", json={"key": "k", "value": 1})
    assert response.status_code == 202
