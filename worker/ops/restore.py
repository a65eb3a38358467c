"""Put a backup back in place of the SQLite database, with the worker stopped.

The file is checked before anything changes (a SQLite database, `PRAGMA integrity_check` clean, at a
revision of ours), on a private copy next to the database so that what is checked is what goes in.
Then the current database is backed up (`maintenance.backup`, nothing rotated away), the copy is
migrated to head if it is older, the current `-wal`/`-shm` are removed (their frames belong to the
file being replaced and would be replayed onto the new one) and the copy is renamed over the
database, the directory fsynced.

Exactly once holds across a restore: the restored file's `processed_events` holds the ids of what it
contains, so events applied after the backup was taken, published again with their ids, apply once,
and the others are duplicates.

Not on PostgreSQL (pg_restore / psql), and never while a worker runs: the caller (`komas ops
restore`) asks the writer lease and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from worker.config import Config
from worker.ops.maintenance import OpRefused, backup, backup_dir, backups, database_file, describe
from worker.store.engines import PRIVATE_FILE_MODE, create_engine, create_private_dir
from worker.store.migrate import alembic_config, current_revision, head_revision, upgrade
from worker.store.safety import fsync_path

SQLITE_HEADER = b"SQLite format 3\x00"
WORKER_RUNNING = (
    "a worker is running on this database: stop it first (`komas up` / `komas worker`: Ctrl-C, "
    "or `docker compose stop worker`), then restore"
)
POSTGRES_RESTORE = (
    "restores of PostgreSQL belong to its own tools: pg_restore (a pg_dump archive) or psql (a plain SQL dump); "
    "nothing was done"
)


def _companions(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def _known_revision(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:  # unknown, or ambiguous
        return False


def _check_source(source: Path, database: Path) -> None:
    """Refuse what is plainly not a database before copying anything; make the database's directory."""
    if not source.exists():
        raise OpRefused(f"{source} does not exist: give the path of a backup (see the backups/ directory)")
    if not source.is_file():
        raise OpRefused(f"{source} is not a file")
    if database.exists() and source.resolve() == database.resolve():
        raise OpRefused(f"{source} is the database itself: give a backup")
    with source.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise OpRefused(f"{source} is not a SQLite database (its first bytes are not the SQLite header)")
    create_private_dir(database.parent)


def _copy_private(source: Path, target: Path) -> None:
    """A page-by-page copy through SQLite (a `-wal` next to the source is read too), created 0600, fsynced."""
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    target.chmod(PRIVATE_FILE_MODE)
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        writer = sqlite3.connect(target)
        try:
            reader.backup(writer)
        finally:
            writer.close()
    finally:
        reader.close()
    fsync_path(target)


def _check_copy(copy: Path, source: Path) -> str:
    """The copy's revision, once `integrity_check` is clean and the revision is one of ours."""
    try:
        report = describe(copy, full=True)
    except sqlite3.DatabaseError as exc:
        raise OpRefused(
            f"{source} cannot be read as a SQLite database ({exc}): it is damaged or not a database"
        ) from None
    if report["check"] != "ok":
        raise OpRefused(f"{source} fails PRAGMA integrity_check ({report['check'][:300]}): it is damaged")
    revision = report["schema_revision"]
    if revision is None:
        raise OpRefused(f"{source} has no schema revision (no alembic_version): not a Komas database")
    if not _known_revision(revision):
        raise OpRefused(
            f"{source} is at schema revision {revision!r}, which is not one of this version's migrations "
            f"(latest {head_revision()}): a backup of a newer Komas, or not ours; restore it with that version"
        )
    return str(revision)


def _settle(copy: Path) -> None:
    """Fold the copy's own WAL into it (migrating it may have left one) and remove it, so one file moves."""
    connection = sqlite3.connect(copy, timeout=30)
    try:
        busy, _log, _done = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        connection.close()
    if busy:
        raise OpRefused(f"could not checkpoint {copy} (busy); nothing was replaced")
    for companion in _companions(copy):
        companion.unlink(missing_ok=True)
    fsync_path(copy)


def _checkpoint_current(database: Path) -> None:
    """Best effort: the current WAL into the database, so a crash before the rename leaves it whole.
    (Its backup was taken already; a reader holding an old snapshot only makes this partial.)"""
    with contextlib.suppress(sqlite3.Error):
        connection = sqlite3.connect(database, timeout=5)
        try:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            connection.close()


def _swap(copy: Path, database: Path) -> None:
    _checkpoint_current(database)
    for companion in _companions(database):
        companion.unlink(missing_ok=True)
    copy.replace(database)
    fsync_path(database.parent)


async def _migrate(copy: Path, config: Config) -> str | None:
    engine = create_engine(f"sqlite+aiosqlite:///{copy}", busy_timeout_ms=config.busy_timeout_ms)
    try:
        await upgrade(engine)
        return await current_revision(engine)
    finally:
        await engine.dispose()


async def restore(config: Config, source: Path, *, worker_running: bool) -> dict[str, Any]:
    """Replace the SQLite database with `source` (a backup); see the module docstring.

    Raises `OpRefused` (nothing changed) when a worker runs, on PostgreSQL, or when `source` is
    missing, not a SQLite database, damaged, or at a revision that is not ours.
    """
    if worker_running:
        raise OpRefused(WORKER_RUNNING)
    database = database_file(config)
    if database is None:
        raise OpRefused(POSTGRES_RESTORE)
    source = Path(source)
    await asyncio.to_thread(_check_source, source, database)
    copy = database.with_name(f".{database.name}.restore-{uuid.uuid4().hex[:12]}.tmp")
    try:
        try:
            await asyncio.to_thread(_copy_private, source, copy)
        except sqlite3.Error as exc:
            raise OpRefused(
                f"{source} cannot be read as a SQLite database ({exc}): it is damaged or not a database"
            ) from None
        from_revision = await asyncio.to_thread(_check_copy, copy, source)

        backup_of_current = None
        if await asyncio.to_thread(database.exists):
            # Nothing rotated away: the file being restored may be the oldest backup of the directory.
            kept = len(await asyncio.to_thread(backups, backup_dir(config, database))) + 1
            try:
                backup_of_current = await backup(config, keep=kept)
            except sqlite3.Error as exc:
                raise OpRefused(
                    f"the current database {database} could not be backed up ({exc}); nothing was replaced. "
                    "If it is damaged, move it (and its -wal and -shm files) aside by hand, then restore"
                ) from None
            if not backup_of_current.get("ok"):
                raise OpRefused(
                    f"the backup of the current database failed its check ({backup_of_current.get('check')}); "
                    "nothing was replaced. If it is damaged, move it (and its -wal and -shm files) aside by hand, "
                    "then restore"
                )

        revision: str | None = from_revision
        if from_revision != head_revision():
            try:
                revision = await _migrate(copy, config)
            except Exception as exc:  # a migration's own error, whatever its kind: nothing is replaced
                raise OpRefused(
                    f"migrating {source} from revision {from_revision} to {head_revision()} failed ({exc}); "
                    "nothing was replaced"
                ) from exc
        await asyncio.to_thread(_settle, copy)
        await asyncio.to_thread(_swap, copy, database)
    finally:
        for leftover in (copy, *_companions(copy)):
            leftover.unlink(missing_ok=True)

    report = await asyncio.to_thread(describe, database)
    return {
        "ok": True,
        "restored": str(source),
        "database": str(database),
        "schema_revision": report["schema_revision"] or revision,
        "migrated_from": from_revision if from_revision != revision else None,
        "counts": report["counts"],
        "last_event": report["last_event"],
        "backup_of_current": backup_of_current,
    }
