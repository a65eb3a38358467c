"""Each rule holds on every path: a batch (writer thread, async session, PostgreSQL), one by one, the managers.

Money adds up exactly (0.1 + 0.2 is 0.3, in any order and split), and overwritten state (a bot's
active flag, a preset's metrics) follows `occurred_at`, not arrival.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text

from events import BacktestFinished, BotToggled, SignalClosed, SignalCreated
from events.catalogue import BaseEvent
from tests.worker.conftest import FreshDatabase, seed_trading
from worker import BotManager, PresetManager, SignalManager, transaction
from worker.apply.handlers import handle
from worker.runtime.jobs import apply_in_transaction
from worker.store.models import BacktestResult, ProcessedEvent

T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def _apply_batch(events: Sequence[BaseEvent]) -> None:
    await apply_in_transaction(list(events))


async def _apply_one_by_one(events: Sequence[BaseEvent]) -> None:
    for event in events:
        await apply_in_transaction([event])


def _opened(uid: str, bot_id: int) -> SignalCreated:
    return SignalCreated(signal_uid=uid, bot_id=bot_id, symbol="BTCUSDT", timeframe="1h", direction="long",
                         entry_price=100.0)  # fmt: skip


def _closed(uid: str, pnl_percent: float, pnl_amount: float | None) -> SignalClosed:
    return SignalClosed(signal_uid=uid, exit_price=101.0, exit_reason="tp1", pnl_percent=pnl_percent,
                        pnl_amount=pnl_amount)  # fmt: skip


async def _raw(sql: str) -> list[Any]:
    async with transaction() as session:
        return list((await session.execute(text(sql))).scalars().all())


async def test_amounts_add_up_exactly_on_every_path(fresh_database: FreshDatabase) -> None:
    await seed_trading(await fresh_database("money"))
    bot_id = 3  # position size 40
    amounts = [0.1, 0.2, None, -0.07, None]  # None: derived, 40 * pnl% / 100
    percents = [1.0, 2.0, 0.3, -1.0, 0.15]
    opens = [_opened(f"m{n}", bot_id) for n in range(len(amounts))]
    closes = [_closed(f"m{n}", pct, amount) for n, (pct, amount) in enumerate(zip(percents, amounts, strict=True))]
    await _apply_batch([*opens, *closes[:2]])  # in a batch
    await _apply_one_by_one(closes[2:4])  # one by one
    async with transaction() as session:
        await handle(session, closes[4])  # as a parked retry applies it
    bot = await BotManager.get(bot_id)
    assert bot is not None
    # 0.1 + 0.2 + 0.12 (40 * 0.3%) - 0.07 + 0.06 (40 * 0.15%)
    assert repr(bot.total_profit) == "0.41"
    signal = await SignalManager.get_by_uid("m2")
    assert signal is not None
    assert repr(signal.pnl_amount) == "0.12"
    assert await _raw(f"SELECT total_profit FROM bots WHERE id = {bot_id}") == [41_000_000]  # units of 10^-8
    assert await _raw("SELECT sum(pnl_amount) FROM signals") == [41_000_000]


async def test_the_managers_add_up_exactly_too(fresh_database: FreshDatabase) -> None:
    await seed_trading(await fresh_database("managers"))
    for n, amount in enumerate((0.1, 0.2)):
        signal = await SignalManager.create(uid=f"g{n}", bot_id=1, symbol="BTCUSDT", timeframe="1h",
                                            direction="long", entry_price=1.0)  # fmt: skip
        await SignalManager.close(signal.id, exit_price=1.1, exit_reason="tp", pnl_percent=1.0, pnl_amount=amount)
    bot = await BotManager.get(1)
    assert bot is not None
    assert bot.total_profit == 0.3
    assert (bot.total_wins, bot.total_losses) == (2, 0)


async def test_an_older_toggle_arriving_later_is_recorded_but_does_not_win(fresh_database: FreshDatabase) -> None:
    await seed_trading(await fresh_database("toggles"))
    newer = BotToggled(bot_id=1, active=False, occurred_at=T0 + timedelta(minutes=5))
    older = BotToggled(bot_id=1, active=True, occurred_at=T0)
    older_in_batch = BotToggled(bot_id=2, active=True, occurred_at=T0)
    newer_in_batch = BotToggled(bot_id=2, active=False, occurred_at=T0 + timedelta(seconds=1))
    await _apply_one_by_one([newer, older])
    await _apply_batch([newer_in_batch, older_in_batch])  # arrival order inside a batch does not matter either
    for bot_id in (1, 2):
        bot = await BotManager.get(bot_id)
        assert bot is not None
        assert bot.is_active is False, bot_id
    recorded = await _raw("SELECT event_id FROM processed_events")
    assert {str(e.event_id) for e in (newer, older, older_in_batch, newer_in_batch)} <= set(recorded)
    # An operator's switch is "now": a toggle from before it, arriving later, does not undo it.
    assert await BotManager.set_active(1, True)
    await _apply_one_by_one([BotToggled(bot_id=1, active=False, occurred_at=T0 + timedelta(minutes=10))])
    bot = await BotManager.get(1)
    assert bot is not None
    assert bot.is_active is True


async def test_an_older_backtest_goes_to_history_but_not_over_newer_metrics(fresh_database: FreshDatabase) -> None:
    await seed_trading(await fresh_database("backtests"))

    def backtest(win_rate: float, at: datetime) -> BacktestFinished:
        return BacktestFinished(preset_id=1, symbol="BTCUSDT", timeframe="1h", win_rate=win_rate, profit_factor=1.0,
                                total_profit_percent=1.0, max_drawdown_percent=1.0, sharpe_ratio=1.0, total_trades=3,
                                occurred_at=at)  # fmt: skip

    await _apply_batch([backtest(70.0, T0 + timedelta(hours=1)), backtest(10.0, T0)])
    await _apply_one_by_one([backtest(20.0, T0 + timedelta(minutes=30))])
    preset = await PresetManager.get(1)
    assert preset is not None
    assert preset.win_rate == 70.0
    async with transaction() as session:
        history = (await session.scalars(select(BacktestResult.win_rate).order_by(BacktestResult.win_rate))).all()
        assert list(history) == [10.0, 20.0, 70.0]
        assert await session.scalar(select(ProcessedEvent.event_id).limit(1)) is not None
