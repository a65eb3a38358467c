"""`GET /health` touches the database and Redis for real."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import migrate, serve
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


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of this test's own (a real file system that can fill up or turn read-only)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


async def test_503_when_the_database_cannot_be_written(small_disk: Path, redis_url: str) -> None:
    """A read-only file system: /health says the worker could not write, naming the file (reads: 503, not 500)."""
    url = f"sqlite+aiosqlite:///{small_disk}/komas.db"
    await migrate(url)
    await asyncio.to_thread(subprocess.run, ["mount", "-o", "remount,ro", str(small_disk)], check=True)
    async with serve(create_app(Config(database_url=url, redis_url=redis_url))) as client:
        health = await client.get("/health")
        reads = await client.get("/api/db/presets")
    assert health.status_code == 503
    assert health.json()["database"].startswith("down: not writable: ")
    assert str(small_disk) in health.json()["database"]
    assert health.json()["redis"] == "ok"
    assert reads.status_code == 503  # SQLite cannot open a WAL database where it cannot create its -shm file


async def test_503_when_the_disk_is_almost_full(small_disk: Path, redis_url: str) -> None:
    url = f"sqlite+aiosqlite:///{small_disk}/komas.db"
    await migrate(url)
    config = Config(database_url=url, redis_url=redis_url, api_min_free_bytes=1024 * 1024)
    async with serve(create_app(config)) as client:
        assert (await client.get("/health")).status_code == 200
        with contextlib.suppress(OSError), (small_disk / "filler").open("wb") as filler:  # until the disk is full
            for _ in range(64):
                filler.write(b"\0" * 64 * 1024)
        assert shutil.disk_usage(small_disk).free < 1024 * 1024
        health = await client.get("/health")
    assert health.status_code == 503
    assert "bytes free" in health.json()["database"]
    assert "KOMAS_API_MIN_FREE_BYTES" in health.json()["database"]
