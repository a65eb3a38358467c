"""The driver-speed statements store exactly what the ORM's column types store, and select the same rows."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import column, insert, make_url, select, table, text
from sqlalchemy.exc import IntegrityError, OperationalError

from worker import close_db
from worker.store.db import Database, transaction
from worker.store.fast_sql import AMONG, among, among_values, insert_rows, scalars_among, sqlite_datetime
from worker.store.models import BacktestResult, Base, Preset

backtest_results = Base.metadata.tables["backtest_results"]


def _row(event_id: str, created_at: datetime) -> dict[str, Any]:
    return {
        "preset_id": 1,
        "event_id": event_id,
        "symbol": "BTCUSDT",
        "timeframe": "1h",
        "win_rate": 61.5,
        "profit_factor": None,
        "total_profit_percent": 12.0,
        "max_drawdown_percent": 3.25,
        "sharpe_ratio": 1.5,
        "total_trades": 40,
        "params": {"tp": [1, 2.5], "name": "é", "nested": {"on": True}, "huge": 2**70},  # beyond orjson
        "created_at": created_at,
    }


def test_sqlite_datetime_is_naive_utc_with_microseconds_always() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert sqlite_datetime(datetime(2026, 1, 2, 5, 4, 5, tzinfo=plus_two)) == "2026-01-02 03:04:05.000000"


async def test_insert_rows_stores_what_core_stores(db: Database) -> None:
    database_url = db.url
    at = datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC)
    try:
        async with transaction() as session:
            session.add(Preset(name="p", indicator_type="trg", settings={}))
            await session.flush()
            connection = await session.connection()
            await connection.execute(insert(backtest_results), [_row("core", at)])
            await session.run_sync(lambda sync: insert_rows(sync.connection(), backtest_results, [_row("fast", at)]))
        async with transaction() as session:
            rows = {row.event_id: row for row in (await session.scalars(select(BacktestResult))).all()}
            raw = (
                await session.execute(
                    text("SELECT event_id, params, created_at FROM backtest_results ORDER BY event_id")
                )
            ).all()
    finally:
        await close_db()

    core, fast = rows["core"], rows["fast"]
    columns = [column.key for column in BacktestResult.__table__.columns if column.key not in ("id", "event_id")]
    assert {key: getattr(fast, key) for key in columns} == {key: getattr(core, key) for key in columns}
    assert fast.created_at == at
    assert raw[0][1:] == raw[1][1:]  # byte for byte the same stored text (JSON and timestamp)
    if make_url(database_url).get_backend_name() == "sqlite":
        path = make_url(database_url).database
        assert path is not None
        with sqlite3.connect(path) as plain:
            stored = plain.execute("SELECT created_at FROM backtest_results").fetchall()
        assert stored == [("2026-03-04 05:06:07.000890",)] * 2


async def test_rows_sharing_a_value_and_rows_not_each_store_their_own(sqlite_url: str) -> None:
    """insert_rows converts a value shared by consecutive rows once; every row still gets its own."""
    first, second = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, 0, 0, 0, 5, tzinfo=UTC)
    times = [first, first, second, first, second, datetime(2026, 1, 2, 0, 0, 0, 5, tzinfo=UTC)]
    database = Database(sqlite_url)
    await database.ensure_schema()
    try:
        async with database.write_sessions() as session, session.begin():
            session.add(Preset(name="p", indicator_type="trg", settings={}))
            await session.flush()
            rows = [_row(f"e{number}", at) for number, at in enumerate(times)]
            await session.run_sync(lambda sync: insert_rows(sync.connection(), backtest_results, rows))
    finally:
        await database.dispose()
    path = make_url(sqlite_url).database
    assert path is not None
    with sqlite3.connect(path) as plain:
        stored = [row[0] for row in plain.execute("SELECT created_at FROM backtest_results ORDER BY event_id")]
    assert stored == [sqlite_datetime(at) for at in times]
    assert stored[1] == "2026-01-01 00:00:00.000000"
    assert stored[2] == "2026-01-02 00:00:00.000005"


@pytest.mark.parametrize("values", [[1, 3], ["a", "c"], []], ids=["ints", "strings", "empty"])
async def test_among_selects_like_in(db: Database, values: list[Any]) -> None:
    try:
        async with transaction() as session:
            for name in ("a", "b", "c"):
                session.add(Preset(name=name, indicator_type="trg", settings={}))
            await session.flush()
            column = Preset.id if values and isinstance(values[0], int) else Preset.name
            dialect = (await session.connection()).dialect.name
            query = select(column).where(among(column, dialect))
            found = set((await session.scalars(query, {AMONG: among_values(values, dialect)})).all())
            expected = set((await session.scalars(select(column).where(column.in_(values)))).all())
    finally:
        await close_db()
    assert found == expected == set(values)


async def test_driver_errors_come_out_as_sqlalchemy_errors(sqlite_url: str) -> None:
    """insert_rows and scalars_among use the driver's cursor; callers still see SQLAlchemy's exceptions."""
    database = Database(sqlite_url)
    await database.ensure_schema()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    event_id = BacktestResult.__table__.c.event_id
    missing = table("missing", column("x")).c.x
    try:
        async with database.write_sessions() as session, session.begin():
            session.add(Preset(name="p", indicator_type="trg", settings={}))
            await session.flush()
            rows = [_row("same", at)]
            await session.run_sync(lambda sync: insert_rows(sync.connection(), backtest_results, rows))
            with pytest.raises(IntegrityError):
                await session.run_sync(lambda sync: insert_rows(sync.connection(), backtest_results, rows))
        writer = database.sqlite_writer()
        assert writer is not None
        with writer.engine.connect() as connection:
            ids = scalars_among(
                connection, "ids", lambda: select(event_id).where(among(event_id, "sqlite")), ["same", "x"]
            )
            assert ids == ["same"]
            with pytest.raises(OperationalError):
                scalars_among(connection, "none", lambda: select(missing).where(among(missing, "sqlite")), ["a"])
    finally:
        await database.dispose()
