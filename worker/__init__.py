"""Komas persistence core: the single writer that applies events to the database.

The seed's API is importable from here:
`from worker import init_db, close_db, create_default_settings, SettingsManager, ...`.
"""

from worker.store.db import close_db, init_db, transaction
from worker.store.managers import (
    BotManager,
    DataCacheManager,
    PresetManager,
    SettingsManager,
    SignalManager,
    create_default_settings,
)

__all__ = [
    "BotManager",
    "DataCacheManager",
    "PresetManager",
    "SettingsManager",
    "SignalManager",
    "close_db",
    "create_default_settings",
    "init_db",
    "transaction",
]
