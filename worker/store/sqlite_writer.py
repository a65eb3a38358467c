"""The SQLite writer thread: a batch's whole write transaction in one hand-off.

aiosqlite runs each statement in its own thread and hands it over and back, several times per
statement; on virtual CPUs, where waking another thread is expensive, a commit round of a few
statements spent more on those hand-offs than SQLite spent working (about 100 context switches
per round). Trading batches, the hot path, are therefore applied by a plain sqlite3 connection
in one dedicated thread: one hand-off per transaction. Commands (rare, through the async
managers) keep the async engine. Both take the process's write lock, so they never wait on each
other inside SQLite.

It knows no event: `run` is where the hot path's transaction opens, is fenced and commits, and the
work it is given (the appliers, see `worker.apply.registry.apply_trading`) receives the connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import QueuePool

from worker.failpoints import failpoint
from worker.store.engines import install_sqlite_hooks, sqlite_engine_arguments
from worker.store.fence import Fence

T = TypeVar("T")


class SQLiteWriter:
    """A synchronous engine used by one thread only, for the hot path's write transactions."""

    def __init__(
        self,
        url: str,
        write_lock: asyncio.Lock,
        *,
        busy_timeout_ms: int | None = None,
        fence: Callable[[], Fence | None] = lambda: None,
    ) -> None:
        timeout_ms, options = sqlite_engine_arguments(busy_timeout_ms)
        url_sync = make_url(url).set(drivername="sqlite")
        self.engine = create_engine(url_sync, poolclass=QueuePool, pool_size=1, max_overflow=0, **options)
        install_sqlite_hooks(self.engine, readonly=False, busy_timeout_ms=timeout_ms)
        self._write_lock = write_lock
        self._fence = fence  # the writer lease's token, checked first in each transaction (see worker.store.fence)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="komas-sqlite-writer")

    async def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work(connection)` in one write transaction, fenced first; committed when this returns."""
        loop = asyncio.get_running_loop()
        async with self._write_lock:
            return await loop.run_in_executor(self._thread, self._run, work)

    def _run(self, work: Callable[[Connection], T]) -> T:
        with self.engine.begin() as connection:
            fence = self._fence()
            if fence is not None:
                fence.check_on(connection)
            done = work(connection)
            failpoint("before_commit")
        return done

    async def maintain(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` on the writer's own sqlite3 connection outside any transaction, holding the write
        lock: for what SQLite refuses inside one (`wal_checkpoint`, `VACUUM`) or what must not race a
        write (`PRAGMA optimize`). Batches wait meanwhile; nothing else writes."""
        loop = asyncio.get_running_loop()
        async with self._write_lock:
            return await loop.run_in_executor(self._thread, self._maintain, work)

    def _maintain(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self.engine.connect() as connection:
            raw = connection.connection.driver_connection
            assert isinstance(raw, sqlite3.Connection)
            return work(raw)

    async def rehearse(self, work: Callable[[Connection], object]) -> None:
        """Run `work(connection)` in a transaction that is rolled back: connects, sets pragmas, compiles
        every statement it runs, so the first real batch does not pay for it (see `worker.runtime.warm_up`)."""
        loop = asyncio.get_running_loop()
        async with self._write_lock:
            await loop.run_in_executor(self._thread, self._rehearse, work)

    def _rehearse(self, work: Callable[[Connection], object]) -> None:
        with self.engine.connect() as connection:
            transaction = connection.begin()
            try:
                work(connection)
            finally:
                transaction.rollback()

    async def close(self) -> None:
        """Close the connection in its own thread (sqlite3 insists), then stop the thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self.engine.dispose)
        self._thread.shutdown(wait=True)
