"""Metadata of cached candle files."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from worker.store.db import read_session, transaction
from worker.store.managers._fields import checked_fields
from worker.store.models import DataCacheInfo

DEFAULT_SOURCE = "binance"
UPDATABLE = ("candles_count", "start_time", "end_time", "file_path", "file_size", "is_complete")


def _key(symbol: str, timeframe: str, source: str) -> Any:
    return (DataCacheInfo.symbol == symbol) & (DataCacheInfo.timeframe == timeframe) & (DataCacheInfo.source == source)


class DataCacheManager:
    """One row per (symbol, timeframe, source); `upsert` creates or updates it."""

    @staticmethod
    async def upsert(symbol: str, timeframe: str, source: str = DEFAULT_SOURCE, **fields: Any) -> DataCacheInfo:
        """Create the row or change the given fields of the existing one."""
        if not source:
            raise ValueError("source must not be empty")
        changes = checked_fields(fields, UPDATABLE, "DataCacheManager.upsert")
        async with transaction() as session:
            info = await session.scalar(select(DataCacheInfo).where(_key(symbol, timeframe, source)))
            if info is None:
                info = DataCacheInfo(symbol=symbol, timeframe=timeframe, source=source, **changes)
                session.add(info)
            else:
                for key, value in changes.items():
                    setattr(info, key, value)
            await session.flush()
            return info

    @staticmethod
    async def get(symbol: str, timeframe: str, source: str = DEFAULT_SOURCE) -> DataCacheInfo | None:
        async with read_session() as session:
            return await session.scalar(select(DataCacheInfo).where(_key(symbol, timeframe, source)))

    @staticmethod
    async def list_all(source: str | None = None) -> list[DataCacheInfo]:
        query = select(DataCacheInfo).order_by(DataCacheInfo.symbol, DataCacheInfo.timeframe, DataCacheInfo.source)
        if source is not None:
            query = query.where(DataCacheInfo.source == source)
        async with read_session() as session:
            return list((await session.scalars(query)).all())

    @staticmethod
    async def delete(symbol: str, timeframe: str, source: str = DEFAULT_SOURCE) -> bool:
        async with transaction() as session:
            result = await session.execute(delete(DataCacheInfo).where(_key(symbol, timeframe, source)))
            return bool(result.rowcount)  # type: ignore[attr-defined]
