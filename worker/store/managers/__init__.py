"""Managers: the seed's API over the tables. Each call joins the enclosing `transaction()` or runs its own."""

from worker.store.managers.bots import BotManager
from worker.store.managers.data_cache import DataCacheManager
from worker.store.managers.dead_letters import DeadLetterManager
from worker.store.managers.defaults import DEFAULT_SETTINGS, create_default_settings
from worker.store.managers.presets import PresetManager
from worker.store.managers.settings import SettingsManager
from worker.store.managers.signals import SignalManager

__all__ = [
    "DEFAULT_SETTINGS",
    "BotManager",
    "DataCacheManager",
    "DeadLetterManager",
    "PresetManager",
    "SettingsManager",
    "SignalManager",
    "create_default_settings",
]
