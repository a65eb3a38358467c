"""Trading bots: configuration, switches and stats."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, update

from worker.store.db import read_session, transaction
from worker.store.errors import NotFoundError
from worker.store.managers._fields import checked_fields
from worker.store.models import Bot, Preset
from worker.store.money import to_units
from worker.store.rules import version
from worker.store.types import units, utc_now

UPDATABLE = (
    "name",
    "symbol",
    "timeframe",
    "preset_id",
    "config",
    "position_size",
    "is_active",
    "telegram_enabled",
    "telegram_chat_id",
)


async def _require_preset(preset_id: int | None) -> None:
    if preset_id is None:
        return
    async with transaction() as session:
        if await session.get(Preset, preset_id) is None:
            raise NotFoundError(f"preset {preset_id} does not exist")


class BotManager:
    """Create, list, switch, count and delete bots."""

    @staticmethod
    async def create(
        name: str,
        symbol: str,
        timeframe: str,
        preset_id: int | None = None,
        config: dict[str, Any] | None = None,
        position_size: float = 100.0,
        is_active: bool = False,
        telegram_enabled: bool = False,
        telegram_chat_id: str | None = None,
    ) -> Bot:
        """A new bot; `preset_id` must name an existing preset."""
        async with transaction() as session:
            await _require_preset(preset_id)
            bot = Bot(
                name=name,
                symbol=symbol,
                timeframe=timeframe,
                preset_id=preset_id,
                config=config or {},
                position_size=position_size,
                is_active=is_active,
                telegram_enabled=telegram_enabled,
                telegram_chat_id=telegram_chat_id,
            )
            session.add(bot)
            await session.flush()
            return bot

    @staticmethod
    async def get(bot_id: int) -> Bot | None:
        async with read_session() as session:
            return await session.get(Bot, bot_id)

    @staticmethod
    async def list_all(active_only: bool = False) -> list[Bot]:
        query = select(Bot).order_by(Bot.id)
        if active_only:
            query = query.where(Bot.is_active.is_(True))
        async with read_session() as session:
            return list((await session.scalars(query)).all())

    @staticmethod
    async def update(bot_id: int, **fields: Any) -> Bot | None:
        """Change the given fields only; None when the bot does not exist."""
        changes = checked_fields(fields, UPDATABLE, "BotManager.update")
        async with transaction() as session:
            bot = await session.get(Bot, bot_id)
            if bot is None:
                return None
            if "preset_id" in changes:
                await _require_preset(changes["preset_id"])
            for key, value in changes.items():
                setattr(bot, key, value)
            if "is_active" in changes:  # now is when it was set: an older toggle arriving later does not undo it
                bot.active_version = version(utc_now())
            await session.flush()
            return bot

    @staticmethod
    async def set_active(bot_id: int, active: bool) -> bool:
        """Switch a bot on or off; False when it does not exist."""
        async with transaction() as session:
            result = await session.execute(
                update(Bot)
                .where(Bot.id == bot_id)
                .values(is_active=active, active_version=version(utc_now()), updated_at=utc_now())
                .execution_options(synchronize_session="fetch")
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    async def activate(bot_id: int) -> bool:
        return await BotManager.set_active(bot_id, True)

    @staticmethod
    async def deactivate(bot_id: int) -> bool:
        return await BotManager.set_active(bot_id, False)

    @staticmethod
    async def increment_stats(bot_id: int, is_win: bool, pnl: float | Decimal) -> bool:
        """Count one finished trade in a single UPDATE (never read-modify-write); `pnl` is rounded to 8 places."""
        async with transaction() as session:
            result = await session.execute(
                update(Bot)
                .where(Bot.id == bot_id)
                .values(
                    total_signals=Bot.total_signals + 1,
                    total_wins=Bot.total_wins + int(is_win),
                    total_losses=Bot.total_losses + int(not is_win),
                    total_profit=Bot.total_profit + units(to_units(pnl)),
                    updated_at=utc_now(),
                )
                .execution_options(synchronize_session="fetch")
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    async def touch_last_signal(bot_id: int, at: datetime) -> None:
        """Record when the bot last emitted a signal (keeps the later of old and new)."""
        async with transaction() as session:
            await session.execute(
                update(Bot)
                .where(Bot.id == bot_id)
                .where((Bot.last_signal_at.is_(None)) | (Bot.last_signal_at < at))
                .values(last_signal_at=at)
                .execution_options(synchronize_session="fetch")
            )

    @staticmethod
    async def delete(bot_id: int) -> bool:
        """Remove a bot and, with it, its signals."""
        async with transaction() as session:
            result = await session.execute(delete(Bot).where(Bot.id == bot_id))
            return bool(result.rowcount)  # type: ignore[attr-defined]
