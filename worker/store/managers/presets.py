"""Indicator presets and their backtest performance."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, delete, not_, select, update

from worker.store.db import read_session, transaction
from worker.store.errors import DuplicateError
from worker.store.managers._fields import checked_fields
from worker.store.models import Preset
from worker.store.rules import version
from worker.store.types import utc_now

UPDATABLE = ("name", "description", "settings", "tags", "indicator_type", "is_favorite")
METRICS = ("win_rate", "profit_factor", "total_profit_percent", "max_drawdown_percent", "sharpe_ratio")


async def _refuse_duplicate_name(name: str, *, except_id: int | None = None) -> None:
    async with transaction() as session:
        query = select(Preset.id).where(Preset.name == name)
        if except_id is not None:
            query = query.where(Preset.id != except_id)
        if (await session.scalar(query)) is not None:
            raise DuplicateError(f"a preset named {name!r} already exists")


def presets_query(favorites_only: bool = False, indicator_type: str | None = None, limit: int = 100) -> Select[Preset]:
    """Presets most recently updated first, filtered; shared with the REST API's read-only engine."""
    query = select(Preset).order_by(Preset.updated_at.desc(), Preset.id.desc()).limit(limit)
    if favorites_only:
        query = query.where(Preset.is_favorite.is_(True))
    if indicator_type is not None:
        query = query.where(Preset.indicator_type == indicator_type)
    return query


class PresetManager:
    """Create, find, list, update, rate and delete presets."""

    @staticmethod
    async def create(
        name: str,
        description: str | None = None,
        settings: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        indicator_type: str = "trg",
        is_favorite: bool = False,
    ) -> Preset:
        """A new preset; a name already taken raises `DuplicateError`."""
        async with transaction() as session:
            await _refuse_duplicate_name(name)
            preset = Preset(
                name=name,
                description=description,
                settings=settings or {},
                tags=list(tags or []),
                indicator_type=indicator_type,
                is_favorite=is_favorite,
            )
            session.add(preset)
            await session.flush()
            return preset

    @staticmethod
    async def get(preset_id: int) -> Preset | None:
        async with read_session() as session:
            return await session.get(Preset, preset_id)

    @staticmethod
    async def get_by_name(name: str) -> Preset | None:
        async with read_session() as session:
            return await session.scalar(select(Preset).where(Preset.name == name))

    @staticmethod
    async def list_all(
        favorites_only: bool = False, indicator_type: str | None = None, limit: int = 100
    ) -> list[Preset]:
        """Most recently updated first."""
        query = presets_query(favorites_only, indicator_type, limit)
        async with read_session() as session:
            return list((await session.scalars(query)).all())

    @staticmethod
    async def update(preset_id: int, **fields: Any) -> Preset | None:
        """Change the given fields only; None when the preset does not exist."""
        changes = checked_fields(fields, UPDATABLE, "PresetManager.update")
        async with transaction() as session:
            preset = await session.get(Preset, preset_id)
            if preset is None:
                return None
            if "name" in changes and changes["name"] != preset.name:
                await _refuse_duplicate_name(changes["name"], except_id=preset_id)
            for key, value in changes.items():
                setattr(preset, key, list(value) if key == "tags" else value)
            await session.flush()
            return preset

    @staticmethod
    async def update_performance(
        preset_id: int,
        *,
        win_rate: float | None = None,
        profit_factor: float | None = None,
        total_profit_percent: float | None = None,
        max_drawdown_percent: float | None = None,
        sharpe_ratio: float | None = None,
    ) -> Preset | None:
        """Set the metrics given (the others keep their values) and mark the preset used now.

        They are the preset's metrics as of now: a backtest that finished earlier, applied later,
        is kept in the history but does not overwrite them (`worker.store.rules.version`).
        """
        given = {
            name: value
            for name, value in {
                "win_rate": win_rate,
                "profit_factor": profit_factor,
                "total_profit_percent": total_profit_percent,
                "max_drawdown_percent": max_drawdown_percent,
                "sharpe_ratio": sharpe_ratio,
            }.items()
            if value is not None
        }
        now = utc_now()
        async with transaction() as session:
            result = await session.execute(
                update(Preset)
                .where(Preset.id == preset_id)
                .values(**given, metrics_version=version(now), last_used_at=now, updated_at=now)
                .execution_options(synchronize_session="fetch")
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return None
            return await session.get(Preset, preset_id)

    @staticmethod
    async def toggle_favorite(preset_id: int) -> Preset | None:
        """Flip `is_favorite` in one UPDATE; returns the preset with its new state."""
        async with transaction() as session:
            result = await session.execute(
                update(Preset)
                .where(Preset.id == preset_id)
                .values(is_favorite=not_(Preset.is_favorite), updated_at=utc_now())
                .execution_options(synchronize_session="fetch")
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return None
            return await session.get(Preset, preset_id, populate_existing=True)

    @staticmethod
    async def delete(preset_id: int) -> bool:
        """Remove a preset: its bots keep running without one, its backtest history goes with it."""
        async with transaction() as session:
            result = await session.execute(delete(Preset).where(Preset.id == preset_id))
            return bool(result.rowcount)  # type: ignore[attr-defined]
