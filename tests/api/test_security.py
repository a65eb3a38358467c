"""The defaults that keep a token-less API local: loopback `Host` only, no cross-origin writes, JSON bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from tests.api.conftest import AUTH, RunningWorker, serve
from worker.api import create_app
from worker.api.security import host_name
from worker.config import Config


@pytest.fixture
async def open_client(migrated: Config) -> AsyncIterator[httpx.AsyncClient]:
    """The API as `komas up` runs it on a laptop: no token."""
    async with serve(create_app(migrated.model_copy(update={"api_token": None, "api_wait_s": 5}))) as client:
        yield client


async def queued(redis_url: str, queue: str) -> int:
    client: Redis = Redis.from_url(redis_url)
    try:
        return int(await client.zcard(queue))
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8000", "127.0.0.1"),
        ("[::1]:8000", "::1"),
        ("[::1]", "::1"),
        ("localhost", "localhost"),
        ("::1", "::1"),
    ],
)
def test_host_name_drops_the_port(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:9999", "127.1.2.3"]
)
async def test_loopback_hosts_are_served(open_client: httpx.AsyncClient, host: str) -> None:
    assert (await open_client.get("/api/db/presets", headers={"Host": host})).status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "192.168.1.10", "0.0.0.0:8000", "localhost.evil.example", ""]
)
async def test_other_hosts_are_refused_without_a_token(
    open_client: httpx.AsyncClient, host: str, redis_url: str, queue_name: str
) -> None:
    """A DNS-rebinding page (its own name resolving to 127.0.0.1) can neither read nor write."""
    read = await open_client.get("/api/db/presets", headers={"Host": host})
    write = await open_client.post("/api/db/settings", json={"key": "k", "value": 1}, headers={"Host": host})
    health = await open_client.get("/health", headers={"Host": host})
    assert read.status_code == write.status_code == health.status_code == 421
    assert "KOMAS_API_TOKEN" in read.json()["detail"]
    assert await queued(redis_url, queue_name) == 0


async def test_any_host_is_served_with_a_token(client: httpx.AsyncClient) -> None:
    """With a token the API may listen on the network, under whatever name it is reached."""
    assert (await client.get("/api/db/presets", headers={"Host": "komas.internal:8000"})).status_code == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:9999", "https://127.0.0.1:8000"])
async def test_cross_origin_writes_are_refused_without_a_token(
    open_client: httpx.AsyncClient, origin: str, redis_url: str, queue_name: str
) -> None:
    response = await open_client.post("/api/db/settings", json={"key": "k", "value": 1}, headers={"Origin": origin})
    assert response.status_code == 403
    assert "cross-origin" in response.json()["detail"]
    assert await queued(redis_url, queue_name) == 0
    # Reads from another origin are harmless without CORS: the browser does not let the page see them.
    assert (await open_client.get("/api/db/presets", headers={"Origin": origin})).status_code == 200


async def test_writes_from_the_api_own_origin_pass(open_client: httpx.AsyncClient, worker: RunningWorker) -> None:
    response = await open_client.post(
        "/api/db/settings", json={"key": "k", "value": 1}, headers={"Origin": "http://127.0.0.1:8000"}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
async def test_a_page_cannot_toggle_a_preset_with_a_simple_request(
    open_client: httpx.AsyncClient, worker: RunningWorker, content_type: str | None
) -> None:
    """What a web page may send anywhere without asking the browser (no preflight): refused, nothing toggled."""
    created = await open_client.post("/api/db/presets", json={"name": "Target"})
    assert created.status_code == 201
    preset = created.json()
    headers = {"content-type": content_type} if content_type else {}
    response = await open_client.post(f"/api/db/presets/{preset['id']}/favorite", content=b"{}", headers=headers)
    assert response.status_code == 415
    assert (await open_client.get(f"/api/db/presets/{preset['id']}")).json()["is_favorite"] is False


async def test_json_with_a_charset_or_a_json_suffix_is_json(client: httpx.AsyncClient, worker: RunningWorker) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = await client.post(
            "/api/db/settings", content=b'{"key": "k", "value": 1}', headers={**AUTH, "content-type": content_type}
        )
        assert response.status_code in (200, 201), response.text


async def test_a_write_without_a_body_needs_no_content_type(client: httpx.AsyncClient, worker: RunningWorker) -> None:
    assert (await client.post("/api/db/settings", json={"key": "k", "value": 1}, headers=AUTH)).status_code == 201
    assert (await client.delete("/api/db/settings/k", headers=AUTH)).status_code == 204
