"""Read queries of the API, on the read-only session of the request.

The managers' own reads run on the process-wide database the worker opens; the API has only its
read-only engine, so its queries live here, each taking the session it runs in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from worker.store.managers.presets import presets_query
from worker.store.models import Bot, DataCacheInfo, DeadLetter, Preset, ProcessedEvent, Setting, Signal

M = TypeVar("M")

COUNTED: dict[str, type[Any]] = {
    "settings": Setting,
    "presets": Preset,
    "bots": Bot,
    "signals": Signal,
    "data_cache": DataCacheInfo,
    "dead_letters": DeadLetter,
}


async def page(session: AsyncSession, query: Select[M], limit: int, offset: int) -> tuple[list[M], int]:
    """One page of `query` and the number of rows it matches in all."""
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = (await session.scalars(query.limit(limit).offset(offset))).all()
    return list(rows), int(total or 0)


async def table_counts(session: AsyncSession) -> dict[str, int]:
    return {
        name: int(await session.scalar(select(func.count()).select_from(model)) or 0) for name, model in COUNTED.items()
    }


async def applied_events(session: AsyncSession) -> tuple[int, datetime | None]:
    count, last = (await session.execute(select(func.count(), func.max(ProcessedEvent.applied_at)))).one()
    return int(count or 0), last


async def settings(session: AsyncSession) -> Sequence[Setting]:
    return (await session.scalars(select(Setting).order_by(Setting.key))).all()


async def presets(
    session: AsyncSession, favorites_only: bool, indicator_type: str | None, limit: int
) -> Sequence[Preset]:
    """Most recently updated first, like `PresetManager.list_all`."""
    return (await session.scalars(presets_query(favorites_only, indicator_type, limit))).all()


def cache_key(symbol: str, timeframe: str, source: str) -> ColumnElement[bool]:
    return (DataCacheInfo.symbol == symbol) & (DataCacheInfo.timeframe == timeframe) & (DataCacheInfo.source == source)


async def cache_entry(session: AsyncSession, symbol: str, timeframe: str, source: str) -> DataCacheInfo | None:
    return await session.scalar(select(DataCacheInfo).where(cache_key(symbol, timeframe, source)))


async def cache_entries(session: AsyncSession, source: str | None) -> Sequence[DataCacheInfo]:
    query = select(DataCacheInfo).order_by(DataCacheInfo.symbol, DataCacheInfo.timeframe, DataCacheInfo.source)
    if source is not None:
        query = query.where(DataCacheInfo.source == source)
    return (await session.scalars(query)).all()


async def bots(session: AsyncSession, active_only: bool) -> Sequence[Bot]:
    query = select(Bot).order_by(Bot.id)
    if active_only:
        query = query.where(Bot.is_active.is_(True))
    return (await session.scalars(query)).all()


async def open_signals(session: AsyncSession, bot_id: int) -> int:
    query = select(func.count()).where(Signal.bot_id == bot_id, Signal.status.in_(("pending", "active")))
    return int(await session.scalar(query) or 0)


def dead_letters_query(include_replayed: bool) -> Select[DeadLetter]:
    query = select(DeadLetter).order_by(DeadLetter.last_seen_at.desc(), DeadLetter.id.desc())
    if not include_replayed:
        query = query.where(DeadLetter.replayed_at.is_(None))
    return query
