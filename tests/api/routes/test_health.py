"""`GET /health` touches the database and Redis for real."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.conftest import serve
from tests.services import free_port
from worker.api import create_app
from worker.config import Config


async def test_200_when_both_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


async def test_503_naming_redis_when_it_does_not_answer(migrated: Config) -> None:
    config = migrated.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    async with serve(create_app(config)) as client:
        response = await client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["database"] == "ok"
    assert body["redis"].startswith("down")


async def test_503_naming_the_database_when_it_is_missing_or_not_migrated(redis_url: str, tmp_path: Path) -> None:
    for url in (f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/komas.db", f"sqlite+aiosqlite:///{tmp_path}/empty.db"):
        async with serve(create_app(Config(database_url=url, redis_url=redis_url))) as client:
            response = await client.get("/health")
            reads = await client.get("/api/db/presets")
        assert response.status_code == 503, url
        assert response.json()["database"].startswith("down"), response.json()
        assert response.json()["redis"] == "ok"
        assert reads.status_code == 503  # reads say the database is unavailable, never 500
        assert "database unavailable" in reads.json()["detail"]


async def test_health_needs_no_token_even_when_reads_do(migrated: Config) -> None:
    config = migrated.model_copy(update={"api_token_reads": True})
    async with serve(create_app(config)) as client:
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/api/db/info")).status_code == 401
