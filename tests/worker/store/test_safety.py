"""The copy taken before a migration: made when a SQLite database with tables is behind head, never
otherwise; it holds the old revision and the data as they were. On real SQLite files."""

from __future__ import annotations

import logging
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest

import worker.store.migrate
from tests.worker.ops.test_restore import make_old_database
from worker import BotManager, close_db, init_db
from worker.store.migrate import head_revision
from worker.store.safety import PreMigrationBackupFailed

HEAD = head_revision()


def path_of(url: str) -> Path:
    return Path(url.removeprefix("sqlite+aiosqlite:///"))


def read(database: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        return connection.execute(sql).fetchall()


async def test_a_database_behind_head_is_copied_before_it_is_migrated(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await make_old_database(sqlite_url, "0005")
    directory = path_of(sqlite_url).parent / "backups"

    with caplog.at_level(logging.INFO, logger="komas.migrate"):
        database = init_db(sqlite_url)
        try:
            await database.ensure_schema()
            (bot,) = await BotManager.list_all()
        finally:
            await close_db()

    (copy,) = directory.glob("komas-pre-migration-*.db")
    assert copy.name.startswith(f"komas-pre-migration-0005-to-{HEAD}-")
    assert read(copy, "SELECT version_num FROM alembic_version") == [("0005",)]
    assert read(copy, "SELECT name, total_profit FROM bots") == [("old", 12.5)]  # a float before 0006
    assert read(path_of(sqlite_url), "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert (bot.name, bot.total_profit) == ("old", 12.5)
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert [path.name for path in directory.iterdir()] == [copy.name]  # no temporary file left
    assert any(copy.name in record.getMessage() and record.levelno == logging.INFO for record in caplog.records)


async def test_no_copy_of_a_new_database_nor_of_one_at_head(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = path_of(sqlite_url).parent / "backups"
    database = init_db(sqlite_url)
    try:
        await database.ensure_schema()  # a new file: nothing to keep
        await BotManager.create(name="b", symbol="BTCUSDT", timeframe="1h")
    finally:
        await close_db()
    assert not directory.exists()

    upgrades: list[object] = []

    async def counted(*args: object, **kwargs: object) -> None:
        upgrades.append(args)

    monkeypatch.setattr(worker.store.migrate, "upgrade", counted)
    database = init_db(sqlite_url)
    try:
        await database.ensure_schema()  # at head: the revision is read, nothing else runs
        assert [bot.name for bot in await BotManager.list_all()] == ["b"]
    finally:
        await close_db()
    assert upgrades == []
    assert not directory.exists()


async def test_no_migration_when_the_copy_cannot_be_written(sqlite_url: str) -> None:
    await make_old_database(sqlite_url, "0005")
    blocker = path_of(sqlite_url).parent / "backups"
    blocker.write_text("a file where the backups directory should be\n")

    database = init_db(sqlite_url)
    try:
        with pytest.raises(PreMigrationBackupFailed, match="nothing was migrated"):
            await database.ensure_schema()
    finally:
        await close_db()
    assert read(path_of(sqlite_url), "SELECT version_num FROM alembic_version") == [("0005",)]
