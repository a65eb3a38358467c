"""Fixtures of the fault suite: a rig (own Redis, database, queue, workers) torn down even when a test fails."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import RedisServer, Rig, require_redis_server, seed_database


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    """A started private Redis and a seeded database; every worker process started on it is killed at the end."""
    require_redis_server()
    server = RedisServer(tmp_path / "redis")
    db_path = tmp_path / "komas.db"
    try:
        server.start()
        setup = Rig(tmp_path, server, db_path, f"komas:faults:{uuid.uuid4().hex[:8]}", seed_database(db_path))
    except BaseException:
        server.stop()
        raise
    try:
        yield setup
    finally:
        setup.close()
