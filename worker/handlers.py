"""One handler per event type: turn a validated event into manager calls.

Handlers run inside the worker's transaction, so every manager call they make joins it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from events import BacktestFinished, BotToggled, SignalClosed, SignalCreated
from events.catalogue import BaseEvent
from worker.command_handlers import COMMAND_HANDLERS
from worker.db import transaction
from worker.errors import MissingDependencyError
from worker.managers import BotManager, PresetManager, SignalManager
from worker.models import BacktestResult

Handler = Callable[[Any], Awaitable[Any]]


async def on_signal_created(event: SignalCreated) -> None:
    await SignalManager.create(
        uid=event.signal_uid,
        bot_id=event.bot_id,
        symbol=event.symbol,
        timeframe=event.timeframe,
        direction=event.direction,
        entry_price=event.entry_price,
        stop_loss=event.stop_loss,
        take_profits=[tp.model_dump() for tp in event.take_profits],
        indicator_values=event.indicator_values,
        created_at=event.occurred_at,
    )


async def on_signal_closed(event: SignalClosed) -> None:
    await SignalManager.close_by_uid(
        event.signal_uid,
        exit_price=event.exit_price,
        exit_reason=event.exit_reason,
        pnl_percent=event.pnl_percent,
        pnl_amount=event.pnl_amount,
        closed_at=event.occurred_at,
    )


async def on_backtest_finished(event: BacktestFinished) -> None:
    preset = await PresetManager.update_performance(
        event.preset_id,
        win_rate=event.win_rate,
        profit_factor=event.profit_factor,
        total_profit_percent=event.total_profit_percent,
        max_drawdown_percent=event.max_drawdown_percent,
        sharpe_ratio=event.sharpe_ratio,
    )
    if preset is None:
        raise MissingDependencyError(f"preset {event.preset_id} does not exist")
    async with transaction() as session:
        session.add(
            BacktestResult(
                preset_id=event.preset_id,
                event_id=str(event.event_id),
                symbol=event.symbol,
                timeframe=event.timeframe,
                win_rate=event.win_rate,
                profit_factor=event.profit_factor,
                total_profit_percent=event.total_profit_percent,
                max_drawdown_percent=event.max_drawdown_percent,
                sharpe_ratio=event.sharpe_ratio,
                total_trades=event.total_trades,
                params=event.params,
                created_at=event.occurred_at,
            )
        )


async def on_bot_toggled(event: BotToggled) -> None:
    if not await BotManager.set_active(event.bot_id, event.active):
        raise MissingDependencyError(f"bot {event.bot_id} does not exist")


HANDLERS: dict[str, Handler] = {
    "signal.created": on_signal_created,
    "signal.closed": on_signal_closed,
    "backtest.finished": on_backtest_finished,
    "bot.toggled": on_bot_toggled,
    **COMMAND_HANDLERS,
}


async def handle(event: BaseEvent) -> Any:
    """Dispatch on the event's `type`; returns the handler's JSON-able answer (commands) or None."""
    return await HANDLERS[event.type](event)
