"""A copy of the SQLite database taken right before a migration changes it.

A migration rewrites tables (SQLite alters a table by copying it) and cannot be undone by running
older code, so before `Database.ensure_schema` migrates a database that already holds tables, it
writes `backups/komas-pre-migration-<from>-to-<head>-<UTC stamp>.db` next to the database file: a
`VACUUM INTO` from a read-only connection (consistent, WAL included), fsynced, then renamed into
place. These files are not rotated by `komas ops backup` (its rotation only counts its own,
`komas-<stamp>.db`); remove them once the new version has proven itself.

Nothing is done when the database is already at head (the revision is read once at start anyway),
when it has no table yet (a new database), or on PostgreSQL (use pg_dump before upgrading).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from worker.store.engines import PRIVATE_FILE_MODE, create_private_dir

log = logging.getLogger("komas.migrate")

PRE_MIGRATION_PREFIX = "komas-pre-migration-"


class PreMigrationBackupFailed(RuntimeError):
    """The copy before a migration could not be written: the migration did not run."""


def fsync_path(path: Path) -> None:
    """Flush a file, or a directory's entries (after a rename), to the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def utc_stamp() -> str:
    """Now, as file names of copies carry it: they sort by time."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def snapshot(database: Path, final: Path) -> None:
    """A consistent copy of a live SQLite database at `final`: `VACUUM INTO` from a read-only connection
    (WAL included; writers neither restart nor wait for it) into a private temporary file (0600, in a
    0700 directory made if missing), fsynced, renamed into place, the directory fsynced. The one way
    every copy is made: backups and the copy before a migration."""
    directory = final.parent
    temporary = final.with_name(final.name + ".tmp")
    try:
        create_private_dir(directory)
        # Created empty and private first (VACUUM INTO takes an empty file), never readable by others.
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE))
        temporary.chmod(PRIVATE_FILE_MODE)
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
        try:
            connection.execute("VACUUM INTO ?", (str(temporary),))
        finally:
            connection.close()
        fsync_path(temporary)
        temporary.replace(final)
        fsync_path(directory)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def _label(revision: str | None) -> str:
    """A revision as it may appear in a file name."""
    text = revision or "none"
    return "".join(char if char.isalnum() or char in "._" else "_" for char in text)[:40]


def pre_migration_backup(database: Path, from_revision: str | None, to_revision: str | None) -> Path:
    """`VACUUM INTO <db dir>/backups/komas-pre-migration-<from>-to-<to>-<stamp>.db` (0600, dir 0700)."""
    directory = database.parent / "backups"
    final = directory / f"{PRE_MIGRATION_PREFIX}{_label(from_revision)}-to-{_label(to_revision)}-{utc_stamp()}.db"
    try:
        snapshot(database, final)
    except (OSError, sqlite3.Error) as exc:
        raise PreMigrationBackupFailed(
            f"could not back up {database} before migrating it from {from_revision} to {to_revision} "
            f"({exc}); nothing was migrated: make room in {directory} (or fix the cause) and start again"
        ) from exc
    log.info(
        "database %s is at revision %s, the code at %s: backed up to %s before migrating",
        database.name,
        from_revision,
        to_revision,
        final.name,
    )
    return final
