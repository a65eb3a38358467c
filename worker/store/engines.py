"""Engines: SQLite's pragmas and BEGIN flavour per role, private database files, JSON columns.

Two engines over the same database: the *writer* (SQLite: `synchronous=FULL`, transactions begin
IMMEDIATE so the write lock is taken up front instead of failing on upgrade) and the *reader*
(`query_only`, deferred BEGIN). Pragmas are set in a connect event on the engine that does the work,
so every pooled connection has them (the seed's never reached its async engine).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from events.envelope import reject_non_finite
from worker.config import get_config
from worker.store.fast_sql import json_text

#: `page_size` first: it only takes effect on a database with no pages yet (a new file), before WAL.
#: 16 KiB pages made the bulk benchmark's inserts (six indexes, two keyed by random UUIDs) 7-12%
#: faster end to end; an existing database keeps the page size it was created with.
WRITER_PRAGMAS = ("page_size=16384", "journal_mode=WAL", "foreign_keys=ON", "synchronous=FULL")
READER_PRAGMAS = ("foreign_keys=ON", "query_only=ON")


def json_serializer(value: Any) -> str:
    """JSON columns: `fast_sql.json_text` (orjson), with NaN and infinity refused (ValueError naming
    where), as the standard library would refuse them; orjson would write null without a word."""
    reject_non_finite(value)
    return json_text(value)


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite URL; None for other databases, `:memory:` and `file:` URIs."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_engine(
    url: str,
    *,
    readonly: bool = False,
    busy_timeout_ms: int | None = None,
    json_deserializer: Callable[[str], Any] | None = None,
) -> AsyncEngine:
    """Build an async engine; for SQLite install the pragmas and the BEGIN flavour for its role.

    `json_deserializer` reads JSON columns (the API's never raises on what is stored); default `json.loads`.
    """
    parsed = make_url(url)
    reader = {"json_deserializer": json_deserializer} if json_deserializer is not None else {}
    if not is_sqlite(parsed):
        options: dict[str, Any] = {"pool_pre_ping": True, "json_serializer": json_serializer, **reader}
        if readonly:
            options["execution_options"] = {"postgresql_readonly": True}
        return create_async_engine(parsed, **options)

    path = sqlite_file(parsed)
    if path is not None and not readonly:
        create_private_file(path)
    timeout_ms, options = sqlite_engine_arguments(busy_timeout_ms)
    engine = create_async_engine(parsed, **options, **reader)
    install_sqlite_hooks(engine.sync_engine, readonly=readonly, busy_timeout_ms=timeout_ms)
    return engine


#: Database files (and SQLite's -wal/-shm, which take the database file's mode) are the owner's alone.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def create_private_dir(directory: Path) -> None:
    """Create `directory` (and its parents) for our files only (0700), unless it exists (its owner chose)."""
    if not directory.exists():
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(PRIVATE_DIR_MODE)


def create_private_file(path: Path) -> None:
    """Create the database's directory (0700) and an empty database file (0600) unless they exist.

    SQLite would create the file with the process umask (0644 by default: world-readable); an empty
    file is a valid empty database, so creating it first decides its mode. Existing ones are left as
    they are (their owner chose).
    """
    create_private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        return
    path.chmod(PRIVATE_FILE_MODE)  # whatever the umask took away from 0600, never more


def sqlite_engine_arguments(busy_timeout_ms: int | None) -> tuple[int, dict[str, Any]]:
    """The busy timeout (ms; configured unless given) and the engine arguments of every SQLite engine of ours."""
    timeout_ms = get_config().busy_timeout_ms if busy_timeout_ms is None else busy_timeout_ms
    return timeout_ms, {"connect_args": {"timeout": timeout_ms / 1000}, "json_serializer": json_serializer}


def install_sqlite_hooks(engine: Engine, *, readonly: bool, busy_timeout_ms: int) -> None:
    """Pragmas on every new connection, and our own BEGIN (IMMEDIATE for a writer) for every transaction."""
    pragmas = (*(READER_PRAGMAS if readonly else WRITER_PRAGMAS), f"busy_timeout={busy_timeout_ms}")
    begin_sql = "BEGIN" if readonly else "BEGIN IMMEDIATE"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take transaction control from the driver so our own BEGIN (below) is the only one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(f"PRAGMA {pragma}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin_sql)
