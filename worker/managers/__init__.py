"""Managers: the seed's API over the tables. Each call joins the enclosing `transaction()` or runs its own."""

from worker.managers.bots import BotManager
from worker.managers.data_cache import DataCacheManager
from worker.managers.dead_letters import DeadLetterManager
from worker.managers.defaults import DEFAULT_SETTINGS, create_default_settings
from worker.managers.presets import PresetManager
from worker.managers.settings import SettingsManager
from worker.managers.signals import SignalManager

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
