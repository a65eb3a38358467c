"""What each operation says when it cannot do its work: no room on the disk, a database that is not a
file, PostgreSQL (where backups, checkpoints and vacuum belong to its own tools). Run in-process through
`run_operation`, exactly what the worker's job runs."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from worker import BotManager, close_db, init_db
from worker.config import Config
from worker.ops import maintenance
from worker.ops.catalogue import OPERATIONS, run_operation


class Usage(NamedTuple):
    total: int
    used: int
    free: int


@pytest.fixture
async def sqlite_config(tmp_path: Path) -> AsyncIterator[Config]:
    config = Config(database_url=f"sqlite+aiosqlite:///{tmp_path}/k.db", backup_dir=str(tmp_path / "b"))
    await init_db(config.database_url).ensure_schema()
    await BotManager.create(name="r", symbol="BTCUSDT", timeframe="1h")
    try:
        yield config
    finally:
        await close_db()


@pytest.mark.parametrize("name", ["backup", "vacuum"])
async def test_without_room_on_the_disk_backup_and_vacuum_refuse_saying_how_much(
    sqlite_config: Config, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: Usage(10, 10, 0))
    report = await run_operation(sqlite_config, name, {})
    assert report["ok"] is False
    assert "free" in report["error"]
    assert not maintenance.backups(Path(str(sqlite_config.backup_dir)))


async def test_an_in_memory_database_is_refused(tmp_path: Path) -> None:
    report = await run_operation(Config(database_url="sqlite+aiosqlite:///:memory:"), "backup", {})
    assert report["ok"] is False
    assert "not a file" in report["error"]


async def test_every_operation_on_postgresql_says_what_it_did(postgres_url: str) -> None:
    config = Config(database_url=postgres_url)
    await init_db(postgres_url).ensure_schema()
    try:
        reports: dict[str, dict[str, Any]] = {name: await run_operation(config, name, {}) for name in OPERATIONS}
    finally:
        await close_db()
    assert all(report["ok"] for report in reports.values()), reports
    for name in ("backup", "checkpoint", "optimize", "vacuum", "integrity"):
        assert "PostgreSQL" in reports[name]["skipped"], reports[name]
    assert "pg_dump" in reports["backup"]["skipped"]
    assert "processed_events" in reports["purge"]  # retention and rebuild-stats work on PostgreSQL too
    assert reports["rebuild-stats"]["differed"] == []
