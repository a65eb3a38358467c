"""The SQLite writer thread: a trading batch's whole transaction in one hand-off.

aiosqlite runs each statement in its own thread and hands it over and back, several times per
statement; on virtual CPUs, where waking another thread is expensive, a commit round of a few
statements spent more on those hand-offs than SQLite spent working (about 100 context switches
per round). Trading batches, the hot path, are therefore applied by a plain sqlite3 connection
in one dedicated thread: one hand-off per transaction. Commands (rare, through the async
managers) keep the async engine. Both take the process's write lock, so they never wait on each
other inside SQLite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from events.catalogue import BaseEvent
from worker.apply.registry import apply_trading
from worker.apply.warm_up import insert_rehearsal_rows, rehearsal_events
from worker.failpoints import failpoint
from worker.runtime.lease import Fence
from worker.store.db import install_sqlite_hooks, sqlite_engine_arguments


class SQLiteWriter:
    """A synchronous engine used by one thread only, for trading batches."""

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
        self._fence = fence  # the writer lease's token, checked first in each transaction (see worker.runtime.lease)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="komas-sqlite-writer")

    async def apply_trading(self, events: Sequence[BaseEvent], *, parked_too: bool) -> list[bool]:
        """Apply and record the new events of a trading-only batch; committed when this returns."""
        loop = asyncio.get_running_loop()
        async with self._write_lock:
            return await loop.run_in_executor(self._thread, self._apply, events, parked_too)

    def _apply(self, events: Sequence[BaseEvent], parked_too: bool) -> list[bool]:
        with self.engine.begin() as connection:
            fence = self._fence()
            if fence is not None:
                fence.check_on(connection)
            flags = apply_trading(connection, events, parked_too=parked_too)
            failpoint("before_commit")
        return flags

    async def warm_up(self) -> None:
        """Pay the first batch's costs before the first job: connect, pragmas, compile every statement.

        A batch of each trading type is applied to a bot and a preset made for it, in a transaction
        that is rolled back: nothing is written. Without it the first jobs after a start waited
        tens of milliseconds, and the jobs queued behind them longer.
        """
        loop = asyncio.get_running_loop()
        async with self._write_lock:
            await loop.run_in_executor(self._thread, self._rehearse)

    def _rehearse(self) -> None:
        with self.engine.connect() as connection:
            transaction = connection.begin()
            try:
                bot_id, preset_id = insert_rehearsal_rows(connection)
                apply_trading(connection, rehearsal_events(bot_id, preset_id), parked_too=True)
            finally:
                transaction.rollback()

    async def close(self) -> None:
        """Close the connection in its own thread (sqlite3 insists), then stop the thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self.engine.dispose)
        self._thread.shutdown(wait=True)
