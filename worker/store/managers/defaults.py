"""The seed's default settings, inserted only where missing."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sqlalchemy import select

from worker.store.db import transaction
from worker.store.managers.settings import SettingsManager
from worker.store.models import Setting


def _app_version() -> str:
    try:
        return version("komas")
    except PackageNotFoundError:  # running from a source tree without install
        return "0.0.0"


DEFAULT_SETTINGS: dict[str, tuple[Any, str]] = {
    "app.name": ("Komas", "Application name"),
    "app.version": (_app_version(), "Application version"),
    "data.default_symbol": ("BTCUSDT", "Symbol shown by default"),
    "data.default_timeframe": ("1h", "Timeframe shown by default"),
    "data.history_days": (365, "Days of candle history to keep"),
    "optimization.workers": (4, "Parallel optimizer processes"),
    "optimization.max_combinations": (10000, "Upper bound of parameter combinations per run"),
    "telegram.enabled": (False, "Send signals to Telegram"),
    "telegram.bot_token": ("", "Telegram bot token"),
    "telegram.default_chat_id": ("", "Telegram chat for signals"),
}


async def create_default_settings() -> int:
    """Insert each default that is missing; returns how many were inserted (0 on a second run)."""
    async with transaction() as session:
        present = set((await session.scalars(select(Setting.key))).all())
        missing = [key for key in DEFAULT_SETTINGS if key not in present]
        for key in missing:
            value, description = DEFAULT_SETTINGS[key]
            await SettingsManager.set(key, value, description)
        return len(missing)
