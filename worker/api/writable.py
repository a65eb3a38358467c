"""Whether the worker can write the SQLite database, seen from outside and without writing a row.

A database that can be read but not written (a read-only mount, files or directory without the write
bit, a full disk) lets every read succeed while every write waits and fails: `/health` must say so.
SQLite writes the database file, and creates its `-wal`, `-shm` and journal files in the directory,
so both must be writable, and the disk needs room for the WAL to grow.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sqlalchemy.engine import make_url

from worker.store.db import is_sqlite


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL, memory and `file:` URIs."""
    if not is_sqlite(url):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def write_problem(url: str, min_free_bytes: int) -> str | None:
    """Why the database cannot be written, or None when nothing is known to stop it."""
    path = sqlite_path(url)
    if path is None:
        return None
    directory = path.parent
    if not directory.is_dir():
        return f"directory {directory} does not exist"
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if file.exists() and not os.access(file, os.W_OK):
            return f"{file} is not writable"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"directory {directory} is not writable (SQLite creates its -wal and -shm files there)"
    free = shutil.disk_usage(directory).free
    if free < min_free_bytes:
        return f"only {free} bytes free on the disk of {directory} (KOMAS_API_MIN_FREE_BYTES={min_free_bytes})"
    return None
