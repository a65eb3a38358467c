"""Warming the worker up: everything a first job pays for, nothing written."""

from __future__ import annotations

import logging

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from tests.services import free_port
from worker.runtime.warm_up import open_redis_connections, warm_up
from worker.store.db import Database, close_db, init_db
from worker.store.models import BacktestResult, Bot, Preset, ProcessedEvent, Signal

TABLES = (Bot, Preset, Signal, BacktestResult, ProcessedEvent)


async def counts(database: Database) -> list[int]:
    async with database.read_sessions() as session:
        return [await session.scalar(select(func.count()).select_from(table)) or 0 for table in TABLES]


async def test_the_rehearsal_batch_leaves_nothing_behind(sqlite_url: str) -> None:
    database = init_db(sqlite_url)
    await database.ensure_schema()
    try:
        await warm_up(database, None, connections=0)

        assert await counts(database) == [0] * len(TABLES)
        assert database.parked_hint is False  # the hint was settled by one read at start-up
    finally:
        await close_db()


async def test_a_failed_warm_up_is_a_warning_not_a_failed_start(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    database = init_db(sqlite_url)
    await database.ensure_schema()
    nobody = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with caplog.at_level(logging.WARNING, logger="komas.worker"):
            await warm_up(database, nobody, connections=2)
        assert "warm-up failed" in caplog.text
    finally:
        await nobody.aclose()
        await close_db()


async def test_redis_connections_are_opened_ahead(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        await open_redis_connections(redis, 5)
        pool = redis.connection_pool
        ready = [connection for connection in pool._available_connections if connection.is_connected]
        assert len(ready) == 5
    finally:
        await redis.aclose()
