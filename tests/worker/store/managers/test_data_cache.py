"""DataCacheManager: the seed's examples, one row per (symbol, timeframe, source), never a NULL source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from tests.worker.store.managers.conftest import assert_utc
from worker import DataCacheManager, transaction
from worker.store.db import Database
from worker.store.models import DataCacheInfo


async def test_seed_example(db: Database) -> None:
    """The seed README's DataCacheInfo section, line by line."""
    cache = await DataCacheManager.upsert(
        symbol="BTCUSDT", timeframe="1h", source="binance", candles_count=8760, is_complete=True
    )
    assert (cache.candles_count, cache.is_complete) == (8760, True)

    got = await DataCacheManager.get("BTCUSDT", "1h", "binance")
    assert got is not None
    assert (got.id, got.symbol, got.timeframe, got.source) == (cache.id, "BTCUSDT", "1h", "binance")
    assert (got.candles_count, got.is_complete) == (8760, True)

    caches = await DataCacheManager.list_all(source="binance")
    assert [c.id for c in caches] == [cache.id]


async def test_upsert_updates_the_existing_row_with_the_given_fields_only(db: Database) -> None:
    first = await DataCacheManager.upsert("BTCUSDT", "1h", candles_count=10, file_path="data/btc_1h.parquet")
    second = await DataCacheManager.upsert("BTCUSDT", "1h", candles_count=20, is_complete=True)
    assert second.id == first.id
    got = await DataCacheManager.get("BTCUSDT", "1h")
    assert got is not None
    assert (got.source, got.candles_count, got.is_complete, got.file_path) == (
        "binance",
        20,
        True,
        "data/btc_1h.parquet",
    )
    assert got.updated_at > first.updated_at
    assert got.created_at == first.created_at
    assert len(await DataCacheManager.list_all()) == 1


async def test_rows_are_unique_per_symbol_timeframe_and_source(db: Database) -> None:
    await DataCacheManager.upsert("BTCUSDT", "1h", "binance", candles_count=1)
    await DataCacheManager.upsert("BTCUSDT", "1h", "bybit", candles_count=2)
    await DataCacheManager.upsert("BTCUSDT", "4h", "binance", candles_count=3)
    await DataCacheManager.upsert("ETHUSDT", "1h", "binance", candles_count=4)
    caches = await DataCacheManager.list_all()
    assert [(c.symbol, c.timeframe, c.source, c.candles_count) for c in caches] == [
        ("BTCUSDT", "1h", "binance", 1),
        ("BTCUSDT", "1h", "bybit", 2),
        ("BTCUSDT", "4h", "binance", 3),
        ("ETHUSDT", "1h", "binance", 4),
    ]
    assert [c.source for c in await DataCacheManager.list_all(source="bybit")] == ["bybit"]
    assert await DataCacheManager.list_all(source="okx") == []
    bybit = await DataCacheManager.get("BTCUSDT", "1h", "bybit")
    assert bybit is not None
    assert bybit.candles_count == 2


async def test_the_database_refuses_a_second_row_for_the_same_key(db: Database) -> None:
    """The unique constraint holds even for writes that bypass the manager."""
    await DataCacheManager.upsert("BTCUSDT", "1h", "binance")
    with pytest.raises(IntegrityError):
        async with transaction() as session:
            session.add(DataCacheInfo(symbol="BTCUSDT", timeframe="1h", source="binance"))
    assert len(await DataCacheManager.list_all()) == 1


@pytest.mark.parametrize("source", ["", None])
async def test_an_empty_source_is_refused(db: Database, source: Any) -> None:
    with pytest.raises(ValueError, match="source"):
        await DataCacheManager.upsert("BTCUSDT", "1h", source)
    assert await DataCacheManager.list_all() == []


async def test_the_database_refuses_a_null_source(db: Database) -> None:
    """NULLs never compare equal, so a NULL source would escape the unique key: the column is NOT NULL."""
    with pytest.raises(IntegrityError, match="source"):
        async with transaction() as session:
            await session.execute(insert(DataCacheInfo).values(symbol="BTCUSDT", timeframe="1h", source=None))
    assert await DataCacheManager.list_all() == []


async def test_upsert_refuses_unknown_fields(db: Database) -> None:
    with pytest.raises(ValueError, match="unknown field\\(s\\) rows"):
        await DataCacheManager.upsert("BTCUSDT", "1h", rows=5)


async def test_get_and_delete(db: Database) -> None:
    await DataCacheManager.upsert("BTCUSDT", "1h")
    await DataCacheManager.upsert("BTCUSDT", "1h", "bybit")
    assert await DataCacheManager.get("BTCUSDT", "4h") is None
    assert await DataCacheManager.delete("BTCUSDT", "1h") is True  # the default source only
    assert await DataCacheManager.get("BTCUSDT", "1h") is None
    assert await DataCacheManager.get("BTCUSDT", "1h", "bybit") is not None
    assert await DataCacheManager.delete("BTCUSDT", "1h") is False


async def test_times_come_back_utc(db: Database) -> None:
    start = datetime(2024, 1, 1, 5, 0, tzinfo=timezone(timedelta(hours=5)))
    end = datetime(2024, 12, 31, 23, 0, tzinfo=UTC)
    await DataCacheManager.upsert("BTCUSDT", "1h", start_time=start, end_time=end, file_size=2**40)
    got = await DataCacheManager.get("BTCUSDT", "1h")
    assert got is not None
    assert (got.start_time, got.end_time, got.file_size) == (start, end, 2**40)
    for value in (got.start_time, got.end_time, got.created_at, got.updated_at):
        assert_utc(value)
    assert got.start_time is not None
    assert got.start_time.hour == 0


async def test_upsert_inside_a_rolled_back_transaction_is_undone(db: Database) -> None:
    await DataCacheManager.upsert("BTCUSDT", "1h", candles_count=1)
    with pytest.raises(RuntimeError):
        async with transaction():
            await DataCacheManager.upsert("BTCUSDT", "1h", candles_count=2)
            await DataCacheManager.upsert("ETHUSDT", "1h")
            raise RuntimeError("abort")
    assert [(c.symbol, c.candles_count) for c in await DataCacheManager.list_all()] == [("BTCUSDT", 1)]
