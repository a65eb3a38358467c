"""`restore`: each refusal changes nothing; a restore backs the current database up, migrates an older
file and puts it in place as one private file. On real SQLite files."""

from __future__ import annotations

import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text

from worker import BotManager, close_db, init_db
from worker.config import Config
from worker.ops.maintenance import OpRefused, backup, describe
from worker.ops.restore import restore
from worker.store.db import create_engine
from worker.store.migrate import head_revision, upgrade

HEAD = head_revision()


def path_of(url: str) -> Path:
    return Path(url.removeprefix("sqlite+aiosqlite:///"))


def bot_names(database: Path) -> list[str]:
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        return [name for (name,) in connection.execute("SELECT name FROM bots ORDER BY id")]


async def make_database(url: str, *bots: str) -> Path:
    """A database at head holding the bots named, made through the managers."""
    init_db(url)
    try:
        for name in bots:
            await BotManager.create(name=name, symbol="BTCUSDT", timeframe="1h")
    finally:
        await close_db()
    return path_of(url)


async def make_old_database(url: str, revision: str = "0005") -> Path:
    """A database left at an older revision, with a bot whose profit is still a float (before 0006)."""
    engine = create_engine(url)
    try:
        await upgrade(engine, revision)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO bots (name, symbol, timeframe, config, position_size, is_active, telegram_enabled,"
                    " total_signals, total_wins, total_losses, total_profit, created_at, updated_at)"
                    " VALUES ('old', 'BTCUSDT', '1h', '{}', 100.0, 0, 0, 2, 1, 1, 12.5,"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
    finally:
        await engine.dispose()
    return path_of(url)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def exists(*paths: Path) -> bool:
    return all(path.exists() for path in paths)


def listing(directory: Path) -> set[str]:
    """The files of a directory, but SQLite's -wal/-shm (a read-only look at a WAL database leaves them)."""
    return {path.name for path in directory.iterdir() if not path.name.endswith(("-wal", "-shm"))}


@pytest.fixture
def config(sqlite_url: str) -> Config:
    return Config(database_url=sqlite_url)


@pytest.fixture
async def current(config: Config) -> Path:
    """The live database, holding one bot ("current")."""
    return await make_database(config.database_url, "current")


@pytest.fixture
async def good_backup(tmp_path: Path) -> Path:
    """A valid backup file at head holding two bots of its own."""
    return await make_database(f"sqlite+aiosqlite:///{tmp_path / 'elsewhere' / 'good.db'}", "b1", "b2")


# --- refusals: each one leaves the database as it was ------------------------------------------------


async def test_refused_while_a_worker_runs(config: Config, current: Path, good_backup: Path) -> None:
    with pytest.raises(OpRefused, match=r"stop it first.*komas up.*komas worker.*docker compose stop worker"):
        await restore(config, good_backup, worker_running=True)
    assert bot_names(current) == ["current"]
    assert not (current.parent / "backups").exists()


async def test_refused_on_postgresql(good_backup: Path) -> None:
    config = Config(database_url="postgresql+asyncpg://komas@127.0.0.1:5432/komas")
    with pytest.raises(OpRefused, match="pg_restore"):
        await restore(config, good_backup, worker_running=False)


async def test_refused_when_the_file_is_missing(config: Config, current: Path, tmp_path: Path) -> None:
    with pytest.raises(OpRefused, match="does not exist"):
        await restore(config, tmp_path / "no-such-backup.db", worker_running=False)
    assert bot_names(current) == ["current"]


async def test_refused_when_the_file_is_not_sqlite(config: Config, current: Path, tmp_path: Path) -> None:
    other = tmp_path / "notes.db"
    other.write_text("these are not the pages you are looking for\n" * 100)
    with pytest.raises(OpRefused, match="not a SQLite database"):
        await restore(config, other, worker_running=False)
    assert bot_names(current) == ["current"]


async def test_refused_when_the_file_is_damaged(config: Config, current: Path, tmp_path: Path) -> None:
    damaged = await make_database(f"sqlite+aiosqlite:///{tmp_path / 'damaged.db'}", *[f"bot{n}" for n in range(300)])
    size = damaged.stat().st_size
    with damaged.open("r+b") as handle:  # the header stays: it still looks like SQLite at first sight
        handle.seek(size // 2)
        handle.write(b"\xff" * 4096)
    before = listing(current.parent)
    with pytest.raises(OpRefused, match="damaged"):
        await restore(config, damaged, worker_running=False)
    assert bot_names(current) == ["current"]
    assert listing(current.parent) == before  # no copy left behind, no backup taken


async def test_refused_when_the_revision_is_not_ours(config: Config, current: Path, good_backup: Path) -> None:
    with closing(sqlite3.connect(good_backup)) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
        connection.commit()
    with pytest.raises(OpRefused, match=r"9999_from_the_future.*not one of this version's migrations"):
        await restore(config, good_backup, worker_running=False)
    assert bot_names(current) == ["current"]


async def test_refused_when_the_file_has_no_revision(config: Config, current: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    with closing(sqlite3.connect(foreign)) as connection:
        connection.execute("CREATE TABLE bots (name TEXT)")
        connection.commit()
    with pytest.raises(OpRefused, match="no schema revision"):
        await restore(config, foreign, worker_running=False)
    assert bot_names(current) == ["current"]


async def test_refused_when_the_file_is_the_database_itself(config: Config, current: Path) -> None:
    with pytest.raises(OpRefused, match="the database itself"):
        await restore(config, current, worker_running=False)
    assert bot_names(current) == ["current"]


# --- restores ------------------------------------------------------------------------------------


async def test_restore_backs_up_the_current_database_first(config: Config, current: Path, good_backup: Path) -> None:
    result = await restore(config, good_backup, worker_running=False)

    assert result["ok"] is True
    assert result["restored"] == str(good_backup)
    assert (result["schema_revision"], result["migrated_from"]) == (HEAD, None)
    assert result["counts"]["bots"] == 2
    assert bot_names(current) == ["b1", "b2"]
    saved = Path(result["backup_of_current"]["file"])
    assert saved.parent == current.parent / "backups"
    assert result["backup_of_current"]["ok"] is True
    assert bot_names(saved) == ["current"]
    # One private file in place, nothing of the copy left beside it.
    assert mode(current) == 0o600
    assert listing(current.parent) == {current.name, "backups", "elsewhere"}
    assert describe(current, full=True)["check"] == "ok"

    # The restored database is the worker's database as any other: it opens, reads and writes.
    init_db(config.database_url)
    try:
        await BotManager.create(name="after", symbol="BTCUSDT", timeframe="1h")
        assert [bot.name for bot in await BotManager.list_all()] == ["b1", "b2", "after"]
    finally:
        await close_db()


async def test_restore_when_there_is_no_database_yet(config: Config, good_backup: Path) -> None:
    database = path_of(config.database_url)
    assert not database.exists()
    result = await restore(config, good_backup, worker_running=False)
    assert result["backup_of_current"] is None
    assert bot_names(database) == ["b1", "b2"]
    assert mode(database) == 0o600


async def test_restore_migrates_an_older_file(config: Config, current: Path, tmp_path: Path) -> None:
    old = await make_old_database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}", "0005")

    result = await restore(config, old, worker_running=False)

    assert (result["migrated_from"], result["schema_revision"]) == ("0005", HEAD)
    assert describe(current)["schema_revision"] == HEAD
    assert describe(old)["schema_revision"] == "0005"  # the backup itself is left as it was
    assert bot_names(current) == ["old"]
    init_db(config.database_url)
    try:
        (bot,) = await BotManager.list_all()
        assert (bot.name, bot.total_profit) == ("old", 12.5)  # 0006 turned the float into exact units
    finally:
        await close_db()


async def test_restoring_the_oldest_backup_does_not_rotate_it_away(config: Config, current: Path) -> None:
    """`backup` keeps KOMAS_BACKUP_KEEP files; the restore's own backup must not delete the one restored."""
    keep_one = Config(database_url=config.database_url, backup_keep=1)
    first = Path((await backup(keep_one))["file"])
    assert bot_names(first) == ["current"]

    result = await restore(keep_one, first, worker_running=False)

    assert exists(first, Path(result["backup_of_current"]["file"]))
    assert result["backup_of_current"]["removed"] == []


async def test_backup_rotation_ignores_the_pre_migration_copies(config: Config, current: Path) -> None:
    directory = current.parent / "backups"
    directory.mkdir()
    copies = [directory / f"komas-pre-migration-0005-to-{HEAD}-2026010{n}T000000000000Z.db" for n in range(3)]
    for copy in copies:
        copy.write_bytes(b"")

    report = await backup(Config(database_url=config.database_url, backup_keep=1))

    assert report["removed"] == []
    assert exists(Path(report["file"]), *copies)
