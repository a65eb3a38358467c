"""The rehearsal batch: one event of each trading type, applied by the real appliers to a bot and a
preset made for it, in a transaction the caller rolls back (`worker.runtime.warm_up` runs it at start).
"""

from __future__ import annotations

from sqlalchemy import Connection, insert

from events import BacktestFinished, BaseEvent, BotToggled, SignalClosed, SignalCreated
from worker.apply.registry import apply_trading
from worker.store.models import Bot, Preset

REHEARSAL = "komas-warm-up"


def insert_rehearsal_rows(connection: Connection) -> tuple[int, int]:
    """A bot and a preset for the rehearsal events to refer to; the caller rolls them back."""
    preset_id = connection.execute(insert(Preset).values(name=REHEARSAL).returning(Preset.id)).scalar_one()
    bot_id = connection.execute(
        insert(Bot).values(name=REHEARSAL, symbol="BTCUSDT", timeframe="1h").returning(Bot.id)
    ).scalar_one()
    return bot_id, preset_id


def rehearsal_events(bot_id: int, preset_id: int) -> list[BaseEvent]:
    """One of each trading type, as a producer would send them."""
    uid = f"{REHEARSAL}-signal"
    common = {"symbol": "BTCUSDT", "timeframe": "1h"}
    return [
        SignalCreated(
            signal_uid=uid,
            bot_id=bot_id,
            direction="long",
            entry_price=100.0,
            stop_loss=95.0,
            take_profits=[{"percent": 1.0, "amount": 100.0, "price": 101.0}],
            indicator_values={"rsi": 50.0},
            **common,
        ),
        SignalClosed(signal_uid=uid, exit_price=101.0, exit_reason="tp1", pnl_percent=1.0),
        BacktestFinished(
            preset_id=preset_id,
            win_rate=50.0,
            profit_factor=1.0,
            total_profit_percent=1.0,
            max_drawdown_percent=1.0,
            sharpe_ratio=1.0,
            total_trades=2,
            params={"length": 14},
            **common,
        ),
        BotToggled(bot_id=bot_id, active=True),
    ]


def rehearse_trading(connection: Connection) -> None:
    """Apply the rehearsal batch on `connection` (every set-based applier and its statements run once)."""
    bot_id, preset_id = insert_rehearsal_rows(connection)
    apply_trading(connection, rehearsal_events(bot_id, preset_id), parked_too=True)
