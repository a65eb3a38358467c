"""SignalManager: the seed's examples, and closes that count in the bot's stats exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.exc import StatementError

from tests.worker.store.managers.conftest import assert_utc
from worker import BotManager, SignalManager, transaction
from worker.store.db import Database
from worker.store.errors import DuplicateError, InvalidStateError, MissingDependencyError, NotFoundError
from worker.store.models import Bot, Signal

TAKE_PROFITS = [
    {"percent": 1.05, "amount": 50, "price": 50525.0},
    {"percent": 1.95, "amount": 30, "price": 50975.0},
]


async def open_signal(bot: Bot, **overrides: Any) -> Signal:
    fields: dict[str, Any] = {
        "bot_id": bot.id,
        "symbol": bot.symbol,
        "timeframe": "1h",
        "direction": "long",
        "entry_price": 50000.0,
    }
    return await SignalManager.create(**{**fields, **overrides})


def stats_of(bot: Bot | None) -> tuple[int, int, int, float]:
    assert bot is not None
    return bot.total_signals, bot.total_wins, bot.total_losses, bot.total_profit


async def test_seed_example(db: Database, bot: Bot) -> None:
    """The seed README's Signal section, line by line (the bot's position_size is 200)."""
    signal = await SignalManager.create(
        bot_id=bot.id,
        symbol="BTCUSDT",
        timeframe="1h",
        direction="long",
        entry_price=50000.0,
        stop_loss=48000.0,
        take_profits=TAKE_PROFITS,
    )
    signal_id = signal.id
    assert (signal.status, signal.stop_loss, signal.take_profits) == ("active", 48000.0, TAKE_PROFITS)
    assert [s.id for s in await SignalManager.get_active_by_bot(bot.id)] == [signal_id]

    closed = await SignalManager.close(signal_id, exit_price=50525.0, exit_reason="tp1", pnl_percent=1.05)

    assert (closed.status, closed.exit_price, closed.exit_reason, closed.pnl_percent) == (
        "closed",
        50525.0,
        "tp1",
        1.05,
    )
    assert closed.pnl_amount == pytest.approx(2.1)
    assert_utc(closed.closed_at)
    assert await SignalManager.get_active_by_bot(bot.id) == []
    stats = stats_of(await BotManager.get(bot.id))
    assert stats[:3] == (1, 1, 0)
    assert stats[3] == pytest.approx(2.1)


async def test_create_keeps_what_it_was_given(db: Database, bot: Bot) -> None:
    signal = await open_signal(
        bot,
        uid="bot1-0001",
        status="pending",
        indicator_values={"atr": 1.0, "trend": [1, -1]},
        take_profits=TAKE_PROFITS,
    )
    got = await SignalManager.get(signal.id)
    assert got is not None
    assert (got.uid, got.status, got.direction, got.entry_price) == ("bot1-0001", "pending", "long", 50000.0)
    assert got.indicator_values == {"atr": 1.0, "trend": [1, -1]}
    assert got.take_profits == TAKE_PROFITS
    assert type(got.take_profits[0]["price"]) is float
    by_uid = await SignalManager.get_by_uid("bot1-0001")
    assert by_uid is not None
    assert by_uid.id == signal.id


async def test_create_makes_up_a_uid_when_none_is_given(db: Database, bot: Bot) -> None:
    first = await open_signal(bot)
    second = await open_signal(bot)
    assert first.uid
    assert first.uid != second.uid


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"direction": "up"}, "direction"),
        ({"status": "closed"}, "pending or active"),
        ({"entry_price": 0.0}, "entry_price"),
        ({"entry_price": -1.0}, "entry_price"),
    ],
)
async def test_create_refuses_bad_values(db: Database, bot: Bot, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await open_signal(bot, **overrides)
    assert await SignalManager.list_recent() == []


async def test_naive_times_are_refused(db: Database, bot: Bot) -> None:
    """A time without a zone is ambiguous: refused on the way in rather than guessed at."""
    naive = datetime(2024, 1, 1)
    with pytest.raises(StatementError, match="naive datetime"):
        await open_signal(bot, created_at=naive)
    signal = await open_signal(bot)
    with pytest.raises(StatementError, match="naive datetime"):
        await SignalManager.close(signal.id, exit_price=1.0, exit_reason="x", pnl_percent=1.0, closed_at=naive)
    assert [s.status for s in await SignalManager.list_recent()] == ["active"]
    assert stats_of(await BotManager.get(bot.id)) == (0, 0, 0, 0.0)


async def test_create_for_a_missing_bot_is_a_missing_dependency(db: Database) -> None:
    with pytest.raises(MissingDependencyError, match="bot 404"):
        await SignalManager.create(bot_id=404, symbol="BTCUSDT", timeframe="1h", direction="long", entry_price=1.0)


async def test_duplicate_uid_is_refused(db: Database, bot: Bot) -> None:
    await open_signal(bot, uid="same")
    with pytest.raises(DuplicateError, match="'same'"):
        await open_signal(bot, uid="same", direction="short")
    assert len(await SignalManager.list_recent()) == 1


async def test_missing_signal(db: Database) -> None:
    assert await SignalManager.get(999) is None
    assert await SignalManager.get_by_uid("nope") is None
    with pytest.raises(NotFoundError, match="signal 999"):
        await SignalManager.close(999, exit_price=1.0, exit_reason="tp1", pnl_percent=1.0)
    with pytest.raises(MissingDependencyError, match="'nope'"):
        await SignalManager.close_by_uid("nope", exit_price=1.0, exit_reason="tp1", pnl_percent=1.0)


async def test_close_adds_the_given_amount_to_the_bot(db: Database, bot: Bot) -> None:
    """An explicit `pnl_amount` is what `total_profit` adds, whatever the position size."""
    win = await open_signal(bot)
    loss = await open_signal(bot, direction="short")
    await SignalManager.close(win.id, exit_price=51000.0, exit_reason="tp2", pnl_percent=2.0, pnl_amount=40.0)
    closed = await SignalManager.close(loss.id, exit_price=50500.0, exit_reason="sl", pnl_percent=-1.0, pnl_amount=-7.5)
    assert closed.pnl_amount == -7.5
    assert stats_of(await BotManager.get(bot.id)) == (2, 1, 1, 32.5)


async def test_close_derives_the_amount_from_position_size(db: Database, bot: Bot) -> None:
    """With only `pnl_percent`, the amount is the bot's position_size (200) times the percent."""
    signal = await open_signal(bot)
    closed = await SignalManager.close(signal.id, exit_price=49000.0, exit_reason="sl", pnl_percent=-2.0)
    assert closed.pnl_amount == pytest.approx(-4.0)
    stats = stats_of(await BotManager.get(bot.id))
    assert stats[:3] == (1, 0, 1)
    assert stats[3] == pytest.approx(-4.0)


async def test_closing_a_closed_signal_is_refused_and_not_counted_twice(db: Database, bot: Bot) -> None:
    signal = await open_signal(bot, uid="once")
    await SignalManager.close(signal.id, exit_price=50525.0, exit_reason="tp1", pnl_percent=1.0, pnl_amount=10.0)
    with pytest.raises(InvalidStateError, match="already closed"):
        await SignalManager.close(signal.id, exit_price=1.0, exit_reason="manual", pnl_percent=-99.0)
    with pytest.raises(InvalidStateError, match="already closed"):
        await SignalManager.close_by_uid("once", exit_price=1.0, exit_reason="manual", pnl_percent=-99.0)
    assert stats_of(await BotManager.get(bot.id)) == (1, 1, 0, 10.0)
    got = await SignalManager.get(signal.id)
    assert got is not None
    assert (got.exit_reason, got.pnl_amount) == ("tp1", 10.0)


async def test_close_by_uid(db: Database, bot: Bot) -> None:
    signal = await open_signal(bot, uid="bot1-0002")
    closed = await SignalManager.close_by_uid("bot1-0002", exit_price=50100.0, exit_reason="tp1", pnl_percent=0.2)
    assert (closed.id, closed.status) == (signal.id, "closed")
    assert stats_of(await BotManager.get(bot.id))[:2] == (1, 1)


async def test_close_and_stats_share_one_transaction(db: Database, bot: Bot) -> None:
    """Rolled back together: the signal is open again and the bot's stats never saw it."""
    signal = await open_signal(bot)
    with pytest.raises(RuntimeError):
        async with transaction():
            await SignalManager.close(signal.id, exit_price=50525.0, exit_reason="tp1", pnl_percent=1.05)
            assert stats_of(await BotManager.get(bot.id))[0] == 1
            raise RuntimeError("abort")
    got = await SignalManager.get(signal.id)
    assert got is not None
    assert (got.status, got.closed_at, got.pnl_amount) == ("active", None, None)
    assert stats_of(await BotManager.get(bot.id)) == (0, 0, 0, 0.0)


async def test_bot_stats_equal_its_closed_signals(db: Database, bot: Bot) -> None:
    """Invariant 6: after a mix of closes, the bot's stats are what its signals table says."""
    for n, pnl in enumerate([1.5, -0.5, 2.0, -3.0, 0.25]):
        signal = await open_signal(bot, uid=f"s{n}")
        await SignalManager.close(signal.id, exit_price=1.0, exit_reason="x", pnl_percent=pnl)
    await open_signal(bot, uid="still-open")
    closed = await SignalManager.list_recent(bot_id=bot.id, status="closed")
    total_signals, wins, losses, profit = stats_of(await BotManager.get(bot.id))
    assert total_signals == len(closed) == 5
    assert wins == sum(1 for s in closed if (s.pnl_percent or 0) > 0) == 3
    assert losses == 2
    assert profit == pytest.approx(sum(s.pnl_amount or 0.0 for s in closed))


async def test_get_active_by_bot_oldest_first_and_only_that_bots(db: Database, bot: Bot) -> None:
    other = await BotManager.create(name="other", symbol="ETHUSDT", timeframe="1h")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    newer = await open_signal(bot, created_at=start + timedelta(hours=2))
    older = await open_signal(bot, created_at=start)
    closed = await open_signal(bot, created_at=start + timedelta(hours=1))
    await SignalManager.close(closed.id, exit_price=1.0, exit_reason="x", pnl_percent=0.0)
    await open_signal(other)
    assert [s.id for s in await SignalManager.get_active_by_bot(bot.id)] == [older.id, newer.id]


async def test_list_recent_newest_first_with_filters(db: Database, bot: Bot) -> None:
    other = await BotManager.create(name="other", symbol="ETHUSDT", timeframe="1h")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    a = await open_signal(bot, created_at=start)
    b = await open_signal(other, symbol="ETHUSDT", created_at=start + timedelta(minutes=1))
    c = await open_signal(bot, created_at=start + timedelta(minutes=2))
    await SignalManager.close(a.id, exit_price=1.0, exit_reason="x", pnl_percent=1.0)

    assert [s.id for s in await SignalManager.list_recent()] == [c.id, b.id, a.id]
    assert [s.id for s in await SignalManager.list_recent(limit=2)] == [c.id, b.id]
    assert [s.id for s in await SignalManager.list_recent(bot_id=bot.id)] == [c.id, a.id]
    assert [s.id for s in await SignalManager.list_recent(symbol="ETHUSDT")] == [b.id]
    assert [s.id for s in await SignalManager.list_recent(status="closed")] == [a.id]
    assert [s.id for s in await SignalManager.list_recent(bot_id=bot.id, status="active")] == [c.id]
    with pytest.raises(ValueError, match="status"):
        await SignalManager.list_recent(status="open")


async def test_timestamps_come_back_utc(db: Database, bot: Bot) -> None:
    """A non-UTC aware time is stored as the same instant and read back in UTC."""
    plus_five = timezone(timedelta(hours=5))
    created = datetime(2025, 6, 1, 12, 0, tzinfo=plus_five)
    closed_at = datetime(2025, 6, 1, 13, 30, tzinfo=plus_five)
    signal = await open_signal(bot, created_at=created)
    await SignalManager.close(signal.id, exit_price=1.0, exit_reason="x", pnl_percent=1.0, closed_at=closed_at)
    got = await SignalManager.get(signal.id)
    assert got is not None
    assert_utc(got.created_at)
    assert_utc(got.closed_at)
    assert got.created_at == created
    assert got.created_at.hour == 7
    assert got.closed_at == closed_at
    owner = await BotManager.get(bot.id)
    assert owner is not None
    assert owner.last_signal_at == created
    assert_utc(owner.last_signal_at)


async def test_last_signal_at_keeps_the_later_time(db: Database, bot: Bot) -> None:
    """A late-arriving older signal does not move the bot's last_signal_at back."""
    late = datetime(2025, 1, 2, tzinfo=UTC)
    await open_signal(bot, created_at=late)
    await open_signal(bot, created_at=late - timedelta(days=1))
    got = await BotManager.get(bot.id)
    assert got is not None
    assert got.last_signal_at == late
