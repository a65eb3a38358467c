"""Handlers of the command events (the writes behind the REST API and the CLI).

Each returns a small JSON answer naming what it touched, so a caller waiting for the job can read
the stored object. A refusal by the data raises a `KomasError`; for commands the job records it
as the answer (404, 409) instead of dead-lettering the event.
"""

from __future__ import annotations

from typing import Any

from events.commands import (
    CreateBot,
    CreatePreset,
    DeleteBot,
    DeleteCache,
    DeletePreset,
    DeleteSetting,
    SetPresetFavorite,
    SetSetting,
    UpdateBot,
    UpdatePreset,
    UpdatePresetPerformance,
    UpsertCache,
)
from worker.store.errors import NotFoundError
from worker.store.managers import BotManager, DataCacheManager, PresetManager, SettingsManager


def _found(value: Any, what: str) -> Any:
    if value is None or value is False:
        raise NotFoundError(f"{what} does not exist")
    return value


async def on_set_setting(event: SetSetting) -> dict[str, Any]:
    await SettingsManager.set(event.key, event.value, event.description)
    return {"key": event.key}


async def on_delete_setting(event: DeleteSetting) -> dict[str, Any]:
    _found(await SettingsManager.delete(event.key), f"setting {event.key!r}")
    return {"key": event.key, "deleted": True}


async def on_create_preset(event: CreatePreset) -> dict[str, Any]:
    preset = await PresetManager.create(
        name=event.name,
        description=event.description,
        settings=event.settings,
        tags=event.tags,
        indicator_type=event.indicator_type,
        is_favorite=event.is_favorite,
    )
    return {"preset_id": preset.id}


async def on_update_preset(event: UpdatePreset) -> dict[str, Any]:
    _found(await PresetManager.update(event.preset_id, **event.changes), f"preset {event.preset_id}")
    return {"preset_id": event.preset_id}


async def on_preset_performance(event: UpdatePresetPerformance) -> dict[str, Any]:
    preset = await PresetManager.update_performance(
        event.preset_id,
        win_rate=event.win_rate,
        profit_factor=event.profit_factor,
        total_profit_percent=event.total_profit_percent,
        max_drawdown_percent=event.max_drawdown_percent,
        sharpe_ratio=event.sharpe_ratio,
    )
    _found(preset, f"preset {event.preset_id}")
    return {"preset_id": event.preset_id}


async def on_preset_favorite(event: SetPresetFavorite) -> dict[str, Any]:
    if event.is_favorite is None:
        preset = _found(await PresetManager.toggle_favorite(event.preset_id), f"preset {event.preset_id}")
    else:
        preset = _found(
            await PresetManager.update(event.preset_id, is_favorite=event.is_favorite), f"preset {event.preset_id}"
        )
    return {"preset_id": event.preset_id, "is_favorite": preset.is_favorite}


async def on_delete_preset(event: DeletePreset) -> dict[str, Any]:
    _found(await PresetManager.delete(event.preset_id), f"preset {event.preset_id}")
    return {"preset_id": event.preset_id, "deleted": True}


async def on_create_bot(event: CreateBot) -> dict[str, Any]:
    bot = await BotManager.create(
        name=event.name,
        symbol=event.symbol,
        timeframe=event.timeframe,
        preset_id=event.preset_id,
        config=event.config,
        position_size=event.position_size,
        is_active=event.is_active,
        telegram_enabled=event.telegram_enabled,
        telegram_chat_id=event.telegram_chat_id,
    )
    return {"bot_id": bot.id}


async def on_update_bot(event: UpdateBot) -> dict[str, Any]:
    _found(await BotManager.update(event.bot_id, **event.changes), f"bot {event.bot_id}")
    return {"bot_id": event.bot_id}


async def on_delete_bot(event: DeleteBot) -> dict[str, Any]:
    _found(await BotManager.delete(event.bot_id), f"bot {event.bot_id}")
    return {"bot_id": event.bot_id, "deleted": True}


async def on_upsert_cache(event: UpsertCache) -> dict[str, Any]:
    info = await DataCacheManager.upsert(event.symbol, event.timeframe, event.data_source, **event.changes())
    return {"cache_id": info.id, "symbol": event.symbol, "timeframe": event.timeframe, "source": event.data_source}


async def on_delete_cache(event: DeleteCache) -> dict[str, Any]:
    what = f"cache entry {event.symbol}/{event.timeframe}/{event.data_source}"
    _found(await DataCacheManager.delete(event.symbol, event.timeframe, event.data_source), what)
    return {"symbol": event.symbol, "timeframe": event.timeframe, "source": event.data_source, "deleted": True}
