"""Warming the worker up before its first job: what the first jobs after a start would pay for.

The first job would open the read-only engine (the parked-events hint), start the writer thread,
connect and compile its statements, and each newly concurrent job another Redis connection, while
the jobs arriving meanwhile queued behind it (the README's performance section, item 9, has the
figures). All of that happens at start-up instead, with a rehearsal batch applied in a transaction
that is rolled back.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis

from events.catalogue import parse_events
from worker.apply.parking import has_parked
from worker.apply.rehearsal import rehearsal_events, rehearse_trading
from worker.store.db import Database

log = logging.getLogger("komas.worker")


async def warm_up(database: Database, redis: Redis | None, connections: int) -> None:
    """Everything a first job would do for the first time, except writing; never fails the start."""
    try:
        parse_events([event.to_wire() for event in rehearsal_events(1, 1)])
        await has_parked()
        writer = database.sqlite_writer()
        if writer is not None:
            await writer.rehearse(rehearse_trading)
        if redis is not None:
            await open_redis_connections(redis, connections)
    except Exception:  # a cold first job is slower, not wrong
        log.warning("warm-up failed; the first jobs will be slower", exc_info=True)


async def open_redis_connections(redis: Redis, count: int) -> None:
    """Open `count` connections of the pool at once and put them back, ready for concurrent jobs."""
    pool = redis.connection_pool
    opened = await asyncio.gather(*(pool.get_connection() for _ in range(count)), return_exceptions=True)
    for connection in opened:
        if not isinstance(connection, BaseException):
            await pool.release(connection)
    failed = [error for error in opened if isinstance(error, BaseException)]
    if failed:
        raise failed[0]
