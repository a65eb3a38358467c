"""The database of this process: its engines and session factories, and the one transaction scope
every manager uses.

`transaction()` is a unit of work shared through a context variable: a manager called inside the
worker's transaction joins it; called on its own it opens, commits and closes its own. (The hot
path's transactions are the SQLite writer's `run`, see `worker.store.sqlite_writer`.)
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from worker.config import get_config
from worker.store.engines import (  # re-exported: most callers know them from here
    PRIVATE_DIR_MODE,
    PRIVATE_FILE_MODE,
    create_engine,
    create_private_file,
    install_sqlite_hooks,
    is_sqlite,
    json_serializer,
    sqlite_engine_arguments,
)

if TYPE_CHECKING:
    from worker.store.fence import Fence
    from worker.store.sqlite_writer import SQLiteWriter

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "Database",
    "DatabaseNotInitialized",
    "close_db",
    "create_engine",
    "create_private_file",
    "current_session",
    "get_database",
    "init_db",
    "install_sqlite_hooks",
    "is_sqlite",
    "joined",
    "json_serializer",
    "read_session",
    "sqlite_engine_arguments",
    "transaction",
]


class DatabaseNotInitialized(RuntimeError):
    """A manager was used before `init_db()`."""


class Database:
    """The engines and session factories of one database, plus its schema state."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.writer = create_engine(url)
        self.reader = create_engine(url, readonly=True) if is_sqlite(url) else self.writer
        self.write_sessions = async_sessionmaker(self.writer, expire_on_commit=False)
        self.read_sessions = async_sessionmaker(self.reader, expire_on_commit=False)
        self._schema_ready = not migrate
        self._schema_lock = asyncio.Lock()
        #: One write transaction at a time in this process: they queue here instead of busy-waiting in SQLite.
        self.write_lock = asyncio.Lock()
        #: Whether `parked_events` may hold rows: None unknown, False known empty (see `parking.has_parked`).
        self.parked_hint: bool | None = None
        self._sqlite_writer: SQLiteWriter | None = None
        #: The writer lease's fencing token, checked by every write transaction (None: unfenced, e.g. tests, CLI).
        self.fence: Fence | None = None

    def sqlite_writer(self) -> SQLiteWriter | None:
        """The writer thread for trading batches (SQLite only), started on first use."""
        if self._sqlite_writer is None and is_sqlite(self.url):
            from worker.store.sqlite_writer import SQLiteWriter

            self._sqlite_writer = SQLiteWriter(self.url, self.write_lock, fence=lambda: self.fence)
        return self._sqlite_writer

    async def ensure_schema(self) -> None:
        """Apply pending migrations once, before the first session is handed out; a SQLite database
        that holds tables is copied to `backups/` first (`worker.store.safety`)."""
        if self._schema_ready:
            return
        async with self._schema_lock:
            if not self._schema_ready:
                from worker.store.migrate import migrate_to_head

                await migrate_to_head(self.writer, self.url)
                self._schema_ready = True

    async def dispose(self) -> None:
        if self._sqlite_writer is not None:
            await self._sqlite_writer.close()
            self._sqlite_writer = None
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


_database: Database | None = None
_current_session: contextvars.ContextVar[AsyncSession | None] = contextvars.ContextVar("komas_session", default=None)


def init_db(url: str | None = None, *, migrate: bool = True) -> Database:
    """Open the database (default `KOMAS_DATABASE_URL`). Synchronous, as the seed calls it.

    The schema is migrated to the latest revision lazily, on first use, unless `migrate=False`.
    """
    global _database
    _database = Database(url or get_config().database_url, migrate=migrate)
    return _database


async def close_db() -> None:
    """Dispose of the engines; safe to call twice."""
    global _database
    if _database is not None:
        await _database.dispose()
        _database = None


def get_database() -> Database:
    if _database is None:
        raise DatabaseNotInitialized("call init_db() before using the managers")
    return _database


def current_session() -> AsyncSession | None:
    """The session of the enclosing `transaction()`, if any."""
    return _current_session.get()


@asynccontextmanager
async def transaction() -> AsyncIterator[AsyncSession]:
    """Join the enclosing write transaction, or run a new one that commits on success."""
    existing = _current_session.get()
    if existing is not None:
        yield existing
        return
    database = get_database()
    await database.ensure_schema()
    async with database.write_lock, database.write_sessions() as session:
        token = _current_session.set(session)
        try:
            async with session.begin():
                if database.fence is not None:
                    await database.fence.check_in(session)
                yield session
        finally:
            _current_session.reset(token)


@asynccontextmanager
async def joined(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Run managers inside `session`'s transaction: what they write goes through the session given
    (the applier's), whatever transaction is current."""
    if _current_session.get() is session:
        yield session
        return
    token = _current_session.set(session)
    try:
        yield session
    finally:
        _current_session.reset(token)


@asynccontextmanager
async def read_session() -> AsyncIterator[AsyncSession]:
    """Join the enclosing transaction (to see its own writes), or read on the read-only engine."""
    existing = _current_session.get()
    if existing is not None:
        yield existing
        return
    database = get_database()
    await database.ensure_schema()
    async with database.read_sessions() as session, session.begin():
        yield session
