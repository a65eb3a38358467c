"""BotManager: the seed's examples, switches, partial updates and stats counted by one atomic UPDATE."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.worker.store.managers.conftest import assert_utc
from worker import BotManager, PresetManager, SignalManager, transaction
from worker.store.db import Database
from worker.store.errors import NotFoundError
from worker.store.models import Bot, Preset


def stats_of(bot: Bot | None) -> tuple[int, int, int, float]:
    assert bot is not None
    return bot.total_signals, bot.total_wins, bot.total_losses, bot.total_profit


async def test_seed_example(db: Database, preset: Preset) -> None:
    """The seed README's Bot section, line by line."""
    bot = await BotManager.create(
        name="BTC Scalper", symbol="BTCUSDT", timeframe="5m", preset_id=preset.id, telegram_enabled=True
    )
    bot_id = bot.id
    assert (bot.preset_id, bot.telegram_enabled, bot.is_active, bot.position_size) == (preset.id, True, False, 100.0)
    assert stats_of(bot) == (0, 0, 0, 0.0)

    assert await BotManager.activate(bot_id) is True
    assert [b.id for b in await BotManager.list_all(active_only=True)] == [bot_id]
    assert await BotManager.deactivate(bot_id) is True
    assert await BotManager.list_all(active_only=True) == []

    assert await BotManager.increment_stats(bot_id, is_win=True, pnl=52.5) is True
    assert stats_of(await BotManager.get(bot_id)) == (1, 1, 0, 52.5)


async def test_create_with_a_missing_preset_is_refused(db: Database) -> None:
    with pytest.raises(NotFoundError, match="preset 404"):
        await BotManager.create(name="b", symbol="BTCUSDT", timeframe="1h", preset_id=404)
    assert await BotManager.list_all() == []


async def test_missing_bot(db: Database) -> None:
    assert await BotManager.get(999) is None
    assert await BotManager.update(999, name="x") is None
    assert await BotManager.activate(999) is False
    assert await BotManager.deactivate(999) is False
    assert await BotManager.increment_stats(999, is_win=True, pnl=1.0) is False
    assert await BotManager.delete(999) is False


async def test_list_all_in_id_order_and_active_only(db: Database) -> None:
    first = await BotManager.create(name="a", symbol="BTCUSDT", timeframe="1h", is_active=True)
    second = await BotManager.create(name="b", symbol="ETHUSDT", timeframe="1h")
    third = await BotManager.create(name="c", symbol="SOLUSDT", timeframe="1h", is_active=True)
    assert [b.id for b in await BotManager.list_all()] == [first.id, second.id, third.id]
    assert [b.id for b in await BotManager.list_all(active_only=True)] == [first.id, third.id]


async def test_update_changes_only_the_given_fields(db: Database, preset: Preset) -> None:
    bot = await BotManager.create(name="b", symbol="BTCUSDT", timeframe="1h", config={"risk": 1}, position_size=50.0)
    updated = await BotManager.update(bot.id, preset_id=preset.id, config={"risk": 2.0}, telegram_chat_id="42")
    assert updated is not None
    got = await BotManager.get(bot.id)
    assert got is not None
    assert (got.name, got.symbol, got.timeframe, got.position_size) == ("b", "BTCUSDT", "1h", 50.0)
    assert (got.preset_id, got.config, got.telegram_chat_id) == (preset.id, {"risk": 2.0}, "42")
    assert got.updated_at > bot.updated_at

    detached = await BotManager.update(bot.id, preset_id=None)
    assert detached is not None
    assert detached.preset_id is None


async def test_update_refuses_unknown_fields_and_missing_presets(db: Database, bot: Bot) -> None:
    with pytest.raises(ValueError, match="total_signals"):
        await BotManager.update(bot.id, total_signals=100)
    with pytest.raises(NotFoundError, match="preset 404"):
        await BotManager.update(bot.id, preset_id=404, name="renamed")
    got = await BotManager.get(bot.id)
    assert got is not None
    assert (got.name, got.preset_id, got.total_signals) == (bot.name, None, 0)


async def test_increment_stats_counts_wins_losses_and_profit(db: Database, bot: Bot) -> None:
    await BotManager.increment_stats(bot.id, is_win=True, pnl=52.5)
    await BotManager.increment_stats(bot.id, is_win=False, pnl=-20.0)
    await BotManager.increment_stats(bot.id, is_win=False, pnl=-2.5)
    assert stats_of(await BotManager.get(bot.id)) == (3, 1, 2, 30.0)


async def test_increment_stats_is_one_atomic_update(db: Database, bot: Bot, statements: list[str]) -> None:
    """No read-modify-write: the only statement about the bot is an UPDATE that adds in the database."""
    await BotManager.increment_stats(bot.id, is_win=True, pnl=1.0)
    about_bots = [sql for sql in statements if re.search(r"\bbots\b", sql)]
    assert len(about_bots) == 1, about_bots
    update = about_bots[0]
    assert update.startswith("UPDATE bots SET")
    for column in ("total_signals", "total_wins", "total_losses", "total_profit"):
        assert re.search(rf"\b{column}=\(bots\.{column} \+ ", update), update


async def test_concurrent_increments_all_count(db: Database, bot: Bot) -> None:
    """Many tasks counting trades at once lose none of them."""
    results = await asyncio.gather(
        *(BotManager.increment_stats(bot.id, is_win=n % 3 == 0, pnl=1.25) for n in range(30))
    )
    assert all(results)
    assert stats_of(await BotManager.get(bot.id)) == (30, 10, 20, 37.5)


async def test_increment_inside_a_rolled_back_transaction_is_undone(db: Database, bot: Bot) -> None:
    with pytest.raises(RuntimeError):
        async with transaction():
            await BotManager.increment_stats(bot.id, is_win=True, pnl=10.0)
            await BotManager.activate(bot.id)
            joined = await BotManager.get(bot.id)  # the enclosing transaction sees its own writes
            assert stats_of(joined) == (1, 1, 0, 10.0)
            raise RuntimeError("abort")
    got = await BotManager.get(bot.id)
    assert stats_of(got) == (0, 0, 0, 0.0)
    assert got is not None
    assert got.is_active is False


async def test_delete_removes_its_signals_only(db: Database, bot: Bot) -> None:
    other = await BotManager.create(name="other", symbol="ETHUSDT", timeframe="1h")
    for owner in (bot, bot, other):
        await SignalManager.create(
            bot_id=owner.id, symbol=owner.symbol, timeframe="1h", direction="long", entry_price=1.0
        )

    assert await BotManager.delete(bot.id) is True

    assert await BotManager.get(bot.id) is None
    assert [s.bot_id for s in await SignalManager.list_recent()] == [other.id]


async def test_deleting_a_bot_keeps_its_preset(db: Database, preset: Preset) -> None:
    bot = await BotManager.create(name="b", symbol="BTCUSDT", timeframe="1h", preset_id=preset.id)
    assert await BotManager.delete(bot.id) is True
    assert await PresetManager.get(preset.id) is not None


async def test_timestamps_are_utc(db: Database, bot: Bot) -> None:
    await SignalManager.create(bot_id=bot.id, symbol="BTCUSDT", timeframe="5m", direction="short", entry_price=2.0)
    got = await BotManager.get(bot.id)
    assert got is not None
    for value in (got.created_at, got.updated_at, got.last_signal_at):
        assert_utc(value)
