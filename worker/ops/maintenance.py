"""Keeping the SQLite file healthy: online backup, WAL checkpoint, optimize, vacuum, integrity check.

Each runs as a job of the worker, the single writer, so it is ordered with the events and never
races them. A backup is `VACUUM INTO` a temporary file from a read connection: a consistent snapshot
of the WAL database that writers do not restart or wait for (a file copy of a live WAL database
misses what is still in the WAL). Checkpoint, optimize and vacuum run on the writer's own
connection, holding the write lock. On PostgreSQL these belong to the database's own tools: each
says so and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from worker.config import Config
from worker.store.db import get_database
from worker.store.engines import PRIVATE_FILE_MODE, create_private_dir, sqlite_file
from worker.store.safety import snapshot, utc_stamp
from worker.store.sqlite_writer import SQLiteWriter

#: The tables a backup's report counts.
COUNTED_TABLES = (
    "bots",
    "signals",
    "presets",
    "backtest_results",
    "settings",
    "processed_events",
    "dead_letters",
    "parked_events",
)
BACKUP_PREFIX = "komas-"
POSTGRES_BACKUP = (
    "backups of PostgreSQL belong to its own tools: pg_dump (logical) or pg_basebackup with WAL archiving "
    "(point in time); nothing was done"
)


class OpRefused(Exception):
    """An operation that cannot run as asked; the message says why and what to do instead."""


def database_file(config: Config) -> Path | None:
    """The SQLite database's file, or None on PostgreSQL."""
    url = make_url(config.database_url)
    if url.get_backend_name() != "sqlite":
        return None
    database = sqlite_file(url)
    if database is None:
        raise OpRefused(f"the database {url.database!r} is not a file: nothing to maintain")
    return database


def backup_dir(config: Config, database: Path) -> Path:
    return Path(config.backup_dir) if config.backup_dir else database.parent / "backups"


def wal_bytes(database: Path) -> int:
    wal = database.with_name(database.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def file_bytes(database: Path) -> int:
    return database.stat().st_size + wal_bytes(database)


def describe(database: Path, *, full: bool = False) -> dict[str, Any]:
    """A database file's health and content: its check, schema revision, row counts and last applied event."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        pragma = "integrity_check" if full else "quick_check"
        problems = [row[0] for row in connection.execute(f"PRAGMA {pragma}")]
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        revision = None
        if "alembic_version" in tables:
            revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        counts = {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in COUNTED_TABLES
            if table in tables
        }
        last = None
        if "processed_events" in tables:
            row = connection.execute(
                "SELECT event_id, event_type, applied_at FROM processed_events ORDER BY applied_at DESC, rowid DESC"
                " LIMIT 1"
            ).fetchone()
            last = {"event_id": row[0], "type": row[1], "applied_at": str(row[2])} if row else None
    finally:
        connection.close()
    return {
        "check": "ok" if problems == ["ok"] else "; ".join(problems[:20]),
        "check_kind": pragma,
        "schema_revision": revision[0] if revision else None,
        "counts": counts,
        "last_event": last,
    }


def _take_backup(database: Path, directory: Path, full: bool) -> dict[str, Any]:
    started = time.monotonic()
    create_private_dir(directory)
    needed = file_bytes(database)
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise OpRefused(f"{directory} has {free} bytes free, the database takes up to {needed}: free some space")
    final = directory / f"{BACKUP_PREFIX}{utc_stamp()}.db"
    snapshot(database, final)
    report = {"file": str(final), "bytes": final.stat().st_size, **describe(final, full=full)}
    report["ok"] = report["check"] == "ok"
    report["seconds"] = round(time.monotonic() - started, 3)
    sidecar = final.with_suffix(".json")
    sidecar.write_text(json.dumps(report, indent=2) + "\n")
    sidecar.chmod(PRIVATE_FILE_MODE)
    return report


def backups(directory: Path) -> list[Path]:
    """The backups in `directory`, oldest first (their names sort by time).

    Only this module's own, `komas-<UTC stamp>.db`: the copies taken before a migration
    (`komas-pre-migration-...`) sort after every stamp and would otherwise count as the newest, so
    that enough of them made each new backup rotate itself away at once.
    """
    return sorted(directory.glob(f"{BACKUP_PREFIX}[0-9]*.db")) if directory.exists() else []


def newest_backup(config: Config) -> Path | None:
    """The newest backup of the SQLite database (None: none yet, or PostgreSQL)."""
    database = database_file(config)
    found = backups(backup_dir(config, database)) if database is not None else []
    return found[-1] if found else None


def _rotate(directory: Path, keep: int) -> list[str]:
    removed = []
    for old in backups(directory)[:-keep]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)
        removed.append(str(old))
    return removed


async def backup(config: Config, *, full: bool = False, keep: int | None = None) -> dict[str, Any]:
    """An online, consistent, verified backup; keeps the newest `keep` (default `KOMAS_BACKUP_KEEP`)."""
    database = database_file(config)
    if database is None:
        return {"ok": True, "skipped": POSTGRES_BACKUP}
    directory = backup_dir(config, database)
    report = await asyncio.to_thread(_take_backup, database, directory, full)
    if report["ok"]:
        report["removed"] = await asyncio.to_thread(_rotate, directory, keep or config.backup_keep)
    return report


def _on_writer(config: Config) -> tuple[Path, SQLiteWriter] | None:
    """The database file and the writer whose connection maintains it; None on PostgreSQL."""
    database = database_file(config)
    writer = get_database().sqlite_writer() if database is not None else None
    return (database, writer) if database is not None and writer is not None else None


def _not_on_postgres(what: str) -> dict[str, Any]:
    return {"ok": True, "skipped": f"{what}: not needed on PostgreSQL (autovacuum and its own checkpoints)"}


async def checkpoint(config: Config) -> dict[str, Any]:
    """`PRAGMA wal_checkpoint(TRUNCATE)`: the WAL copied into the database and emptied."""
    target = _on_writer(config)
    if target is None:
        return _not_on_postgres("checkpoint")
    database, writer = target
    before = wal_bytes(database)
    busy, log_frames, done_frames = await writer.maintain(
        lambda raw: raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    )
    return {
        "ok": busy == 0,
        "wal_bytes_before": before,
        "wal_bytes_after": wal_bytes(database),
        "frames": log_frames,
        "checkpointed": done_frames,
        **({"busy": "a reader held an older snapshot; run it again"} if busy else {}),
    }


async def optimize(config: Config) -> dict[str, Any]:
    """`PRAGMA optimize`: refresh the query planner's statistics where they went stale."""
    target = _on_writer(config)
    if target is None:
        return _not_on_postgres("optimize")
    await target[1].maintain(lambda raw: raw.execute("PRAGMA optimize").fetchall())
    return {"ok": True}


async def vacuum(config: Config) -> dict[str, Any]:
    """A full `VACUUM` (rewrites the file, returns free pages to the disk); refused without room for a copy."""
    target = _on_writer(config)
    if target is None:
        return _not_on_postgres("vacuum")
    database, writer = target
    before, free = file_bytes(database), shutil.disk_usage(database.parent).free
    if free < before:
        raise OpRefused(f"vacuum needs room for a copy of the database ({before} bytes); {free} bytes are free")
    await writer.maintain(lambda raw: raw.execute("VACUUM").fetchall())
    return {"ok": True, "bytes_before": before, "bytes_after": file_bytes(database)}


async def integrity(config: Config, *, full: bool = False) -> dict[str, Any]:
    """`PRAGMA quick_check` (or `integrity_check` with `full`) on a read connection; changes nothing."""
    database = database_file(config)
    if database is None:
        return {"ok": True, "skipped": "integrity: PostgreSQL checks its pages itself (see amcheck)"}
    report = await asyncio.to_thread(describe, database, full=full)
    return {"ok": report["check"] == "ok", **report}
