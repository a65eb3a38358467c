"""The engine's pragmas, transaction flavour and the join-or-own transaction scope."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from worker import SettingsManager, transaction
from worker.store.db import Database, create_engine, current_session


async def test_writer_pragmas_are_set_on_a_live_connection(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url, busy_timeout_ms=4321)
    try:
        async with engine.connect() as conn:
            values = {
                name: (await conn.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous", "query_only")
            }
    finally:
        await engine.dispose()
    assert values == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 4321, "synchronous": 2, "query_only": 0}


async def test_a_new_database_gets_16_kib_pages_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    import sqlite3

    old = tmp_path / "old.db"
    with closing(sqlite3.connect(old)) as connection:
        connection.execute("CREATE TABLE t (x INTEGER)")  # created before us, with SQLite's default pages
        connection.commit()
    sizes = {}
    for name in ("new.db", "old.db"):
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / name}")
        try:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
                sizes[name] = (await conn.execute(text("PRAGMA page_size"))).scalar()
        finally:
            await engine.dispose()
    assert sizes == {"new.db": 16384, "old.db": 4096}


async def test_reader_is_query_only(sqlite_url: str) -> None:
    writer = create_engine(sqlite_url)
    reader = create_engine(sqlite_url, readonly=True)
    try:
        async with writer.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        async with reader.connect() as conn:
            assert (await conn.execute(text("PRAGMA query_only"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            with pytest.raises(Exception, match="readonly"):
                await conn.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        await writer.dispose()
        await reader.dispose()


async def _begin_and_select(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("SELECT 1"))


async def test_write_transactions_begin_immediate(sqlite_url: str) -> None:
    """An IMMEDIATE transaction holds the write lock from BEGIN: a second writer cannot start."""
    first = create_engine(sqlite_url, busy_timeout_ms=0)
    second = create_engine(sqlite_url, busy_timeout_ms=0)
    try:
        async with first.begin() as conn:
            await conn.execute(text("SELECT 1"))  # no write yet: only BEGIN IMMEDIATE can hold the lock
            with pytest.raises(Exception, match="locked"):
                await _begin_and_select(second)
    finally:
        await first.dispose()
        await second.dispose()


async def test_manager_call_joins_the_enclosing_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with transaction() as session:
            await SettingsManager.set("a", 1)
            assert current_session() is session
            assert await SettingsManager.get("a") == 1  # sees its own uncommitted write
            raise RuntimeError("boom")
    assert await SettingsManager.get("a") is None  # rolled back with the enclosing transaction
    assert current_session() is None


async def test_manager_call_alone_is_its_own_transaction(db: Database) -> None:
    await SettingsManager.set("b", 2)
    assert await SettingsManager.get("b") == 2


def test_json_columns_refuse_nan_instead_of_storing_null() -> None:
    from worker.store.db import json_serializer

    with pytest.raises(ValueError, match="NaN"):
        json_serializer({"deep": [1.0, float("nan")]})
    assert json_serializer({"big": 2**70, "x": 1.5}) == '{"big": 1180591620717411303424, "x": 1.5}'
    assert json_serializer({}) == "{}"
