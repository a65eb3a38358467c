"""Typed key/value settings."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import delete, select

from worker.store.db import read_session, transaction
from worker.store.models import Setting

INT64 = (-(2**63), 2**63 - 1)


def _refuse_non_finite(value: Any) -> None:
    """NaN and infinities are not JSON: PostgreSQL refuses them, SQLite would store them; refuse on both."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"setting values must be finite numbers, not {value!r}")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_non_finite(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_non_finite(item)


def value_type_of(value: Any) -> str:
    """Name of the JSON type a value is stored as; bool before int because bool is an int."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        # SQLite stores a bare integer as a 64-bit INTEGER and anything larger as a lossy REAL.
        if not INT64[0] <= value <= INT64[1]:
            raise ValueError(f"integer setting values must fit in 64 bits, not {value}")
        return "int"
    if isinstance(value, float):
        _refuse_non_finite(value)
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, dict | list):
        _refuse_non_finite(value)
        return "json"
    raise TypeError(
        f"setting values must be JSON types (str, int, float, bool, dict, list), not {type(value).__name__}"
    )


class SettingsManager:
    """`await SettingsManager.set("optimization.workers", 4)`; values come back with their type."""

    @staticmethod
    async def set(key: str, value: Any, description: str | None = None) -> Setting:
        """Create or replace a setting; a missing description keeps the old one."""
        if not key or len(key) > 200:
            raise ValueError("setting key must be 1 to 200 characters")
        value_type = value_type_of(value)
        async with transaction() as session:
            setting = await session.get(Setting, key)
            if setting is None:
                setting = Setting(key=key, value=value, value_type=value_type, description=description)
                session.add(setting)
            else:
                setting.value = value
                setting.value_type = value_type
                if description is not None:
                    setting.description = description
            await session.flush()
            return setting

    @staticmethod
    async def get(key: str, default: Any = None) -> Any:
        """The value, or `default` when the key is not set."""
        async with read_session() as session:
            setting = await session.get(Setting, key)
            return default if setting is None else setting.value

    @staticmethod
    async def get_setting(key: str) -> Setting | None:
        """The whole row (value, type, description, times)."""
        async with read_session() as session:
            return await session.get(Setting, key)

    @staticmethod
    async def get_all() -> dict[str, Any]:
        """Every setting as `{key: value}`, sorted by key."""
        return {setting.key: setting.value for setting in await SettingsManager.list_all()}

    @staticmethod
    async def list_all() -> list[Setting]:
        """Every setting row, sorted by key."""
        async with read_session() as session:
            return list((await session.scalars(select(Setting).order_by(Setting.key))).all())

    @staticmethod
    async def delete(key: str) -> bool:
        """Remove a setting; False when there was none."""
        async with transaction() as session:
            result = await session.execute(delete(Setting).where(Setting.key == key))
            return bool(result.rowcount)  # type: ignore[attr-defined]
