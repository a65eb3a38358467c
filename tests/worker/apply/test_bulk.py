"""The set-based appliers have exactly the effect of the managers called event by event."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from events import BacktestFinished, BotToggled, SignalClosed, SignalCreated
from events.catalogue import BaseEvent
from tests.worker.conftest import FreshDatabase, seed_trading
from worker import close_db, transaction
from worker.apply.handlers import handle
from worker.runtime.jobs import apply_in_transaction
from worker.store.errors import DuplicateError, InvalidStateError, MissingDependencyError
from worker.store.models import BacktestResult, Bot, Preset, Signal

# Wall-clock times differ between the two runs by construction; ids are compared through their rows.
IGNORED = {"updated_at", "last_used_at", "id"}
SEEDED = {"bots", "presets"}  # created by the test itself, at different times in the two databases


def stream(seed: int) -> list[BaseEvent]:
    """Creates, closes (some with pnl_amount, some a breakeven), backtests and toggles, interleaved."""
    rng = random.Random(seed)
    events: list[BaseEvent] = []
    open_uids: list[str] = []
    for n in range(300):
        roll = rng.random()
        if roll < 0.4 or not open_uids:
            uid = f"s{n}"
            open_uids.append(uid)
            events.append(
                SignalCreated(
                    signal_uid=uid, bot_id=rng.randint(1, 3), symbol="BTCUSDT", timeframe="1h",
                    direction=rng.choice(["long", "short"]), entry_price=100 + n,
                    take_profits=[{"percent": 1.0, "amount": 50, "price": 101 + n}],
                )
            )  # fmt: skip
        elif roll < 0.75:
            uid = open_uids.pop(rng.randrange(len(open_uids)))
            pnl = rng.choice([-1.5, 0.0, 2.25, 0.5])
            amount = rng.choice([None, pnl * 3])
            events.append(
                SignalClosed(signal_uid=uid, exit_price=99.0, exit_reason="tp1", pnl_percent=pnl, pnl_amount=amount)
            )
        elif roll < 0.9:
            events.append(
                BacktestFinished(
                    preset_id=rng.randint(1, 2), symbol="ETHUSDT", timeframe="4h", win_rate=rng.uniform(0, 100),
                    profit_factor=1.5, total_profit_percent=rng.uniform(-50, 50), max_drawdown_percent=5.0,
                    sharpe_ratio=1.1, total_trades=n,
                )
            )  # fmt: skip
        else:
            events.append(BotToggled(bot_id=rng.randint(1, 3), active=rng.random() < 0.5))
    return events


async def _snapshot() -> dict[str, list[dict[str, Any]]]:
    snapshot: dict[str, list[dict[str, Any]]] = {}
    async with transaction() as session:
        for model, order in (
            (Signal, Signal.uid),
            (Bot, Bot.id),
            (Preset, Preset.id),
            (BacktestResult, BacktestResult.event_id),
        ):
            rows = (await session.scalars(select(model).order_by(order))).all()
            ignored = IGNORED | ({"created_at"} if model.__tablename__ in SEEDED else set())
            snapshot[model.__tablename__] = [
                {k: v for k, v in row.to_dict().items() if k not in ignored} for row in rows
            ]
    return snapshot


async def test_bulk_and_event_by_event_end_in_the_same_database(fresh_database: FreshDatabase) -> None:
    events = stream(seed=7)
    await seed_trading(await fresh_database("bulk"))
    await apply_in_transaction(events)
    bulk = await _snapshot()
    await close_db()

    await seed_trading(await fresh_database("one_by_one"))
    for event in events:
        async with transaction() as session:
            await handle(session, event)
    one_by_one = await _snapshot()
    await close_db()

    assert len(bulk["signals"]) == sum(isinstance(e, SignalCreated) for e in events)
    assert bulk == one_by_one


def _created(uid: str, bot_id: int = 1) -> SignalCreated:
    return SignalCreated(
        signal_uid=uid, bot_id=bot_id, symbol="BTCUSDT", timeframe="1h", direction="long", entry_price=1
    )


@pytest.mark.parametrize(
    ("events", "error"),
    [
        ([_created("x", bot_id=9)], MissingDependencyError),
        ([_created("d")] * 2, DuplicateError),
        ([SignalClosed(signal_uid="never", exit_price=1, exit_reason="sl", pnl_percent=-1)], MissingDependencyError),
        ([_created("c"),
          SignalClosed(signal_uid="c", exit_price=1, exit_reason="sl", pnl_percent=-1),
          SignalClosed(signal_uid="c", exit_price=1, exit_reason="sl", pnl_percent=-1)], InvalidStateError),
        ([BacktestFinished(preset_id=5, symbol="BTCUSDT", timeframe="1h", win_rate=1, profit_factor=1,
                           total_profit_percent=1, max_drawdown_percent=1, sharpe_ratio=1, total_trades=1)],
         MissingDependencyError),
        ([BotToggled(bot_id=9, active=True)], MissingDependencyError),
    ],
    ids=[
        "signal-for-missing-bot", "uid-twice", "close-unknown", "close-twice", "backtest-missing-preset",
        "toggle-missing",
    ],
)  # fmt: skip
async def test_bulk_refuses_what_the_managers_refuse_and_changes_nothing(
    fresh_database: FreshDatabase, events: list[BaseEvent], error: type[Exception]
) -> None:
    await seed_trading(await fresh_database("refuse"))
    before = await _snapshot()
    with pytest.raises(error):
        await apply_in_transaction([e.model_copy(update={"event_id": uuid.uuid4()}) for e in events])
    assert await _snapshot() == before
    await close_db()
