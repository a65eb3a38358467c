"""Fixtures of the worker's tests: each way a batch can be applied, on a fresh database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from worker import BotManager, PresetManager, close_db, init_db
from worker.store.db import Database
from worker.store.models import Base

#: Makes an empty database and returns its URL.
FreshDatabase = Callable[[str], Awaitable[str]]


@pytest.fixture(
    params=["sqlite-writer-thread", "sqlite-async-session", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FreshDatabase:
    """Each way a batch can be applied: SQLite's writer thread, the async session (PostgreSQL's path)."""
    if request.param == "sqlite-async-session":
        monkeypatch.setattr(Database, "sqlite_writer", lambda _self: None)
    if request.param != "postgres":

        async def sqlite_file(name: str) -> str:
            return f"sqlite+aiosqlite:///{tmp_path}/{name}.db"

        return sqlite_file
    url: str = request.getfixturevalue("postgres_url")

    async def emptied(_name: str) -> str:
        database = init_db(url)
        await database.ensure_schema()
        tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
        async with database.writer.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await close_db()
        return url

    return emptied


async def seed_trading(url: str) -> None:
    """Two presets and three bots (position sizes 100, 250 and 40), created through the managers."""
    init_db(url)
    for name in ("p1", "p2"):
        await PresetManager.create(name=name)
    for size in (100.0, 250.0, 40.0):
        await BotManager.create(name=f"bot{size}", symbol="BTCUSDT", timeframe="1h", position_size=size)
