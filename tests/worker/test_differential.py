"""One database, whatever the path: the same stream ends in the same rows, column for column.

Random streams of trading events and commands (hypothesis), on bots whose counters do not start
at zero, applied (a) in large jobs through the hot path (the SQLite writer thread), (b) one event
per job in shuffled order, so closes arrive before their creates, park and are retried, and
(c) in large jobs on PostgreSQL. Streams hold no conflicting events (a signal is closed at most
once, a setting set once); toggles and backtests of one bot or preset do conflict by arrival, and
must not matter: their state follows `occurred_at`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text, update

from events import BacktestFinished, BotToggled, SignalClosed, SignalCreated
from events.catalogue import BaseEvent
from events.commands import SetSetting, UpsertCache
from tests.conftest import _truncate_all
from worker import BotManager, PresetManager, close_db, init_db, transaction
from worker.apply.parking import retry_parked
from worker.config import Config
from worker.runtime.jobs import apply_events, apply_in_transaction
from worker.store.models import BacktestResult, Bot, DataCacheInfo, Preset, Setting, Signal
from worker.store.types import units

T0 = datetime(2026, 5, 1, tzinfo=UTC)
#: Columns set from the wall clock or by arrival (ids), not by the stream.
WALL_CLOCK = {"id", "updated_at", "last_used_at", "created_at_db", "metrics_version_now"}
POSITION_SIZES = (100.0, 33.33, 250.0)


@st.composite
def streams(draw: st.DrawFn) -> list[BaseEvent]:
    """Creates and closes (amounts with two decimals, some derived), toggles, backtests, commands."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    count = draw(st.integers(1, 60))
    events: list[BaseEvent] = []
    open_uids: list[str] = []
    for n in range(count):
        at = T0 + timedelta(seconds=rng.randrange(0, 3600))
        roll = rng.random()
        if roll < 0.35 or (roll < 0.65 and not open_uids):
            uid = f"s{n}"
            open_uids.append(uid)
            events.append(SignalCreated(signal_uid=uid, bot_id=rng.randint(1, 3), symbol="BTCUSDT", timeframe="1h",
                                        direction="long", entry_price=100.0, occurred_at=at))  # fmt: skip
        elif roll < 0.65:
            uid = open_uids.pop(rng.randrange(len(open_uids)))
            pnl = rng.choice([-1.5, 0.0, 2.25, 0.37, -0.01])
            amount = rng.choice([None, round(rng.uniform(-50, 50), 2), 0.1, 0.2])
            events.append(SignalClosed(signal_uid=uid, exit_price=99.0, exit_reason="tp1", pnl_percent=pnl,
                                       pnl_amount=amount, occurred_at=at))  # fmt: skip
        elif roll < 0.8:
            events.append(BotToggled(bot_id=rng.randint(1, 3), active=rng.random() < 0.5, occurred_at=at))
        elif roll < 0.93:
            events.append(BacktestFinished(preset_id=rng.randint(1, 2), symbol="ETHUSDT", timeframe="4h",
                                           win_rate=round(rng.uniform(0, 100), 2), profit_factor=1.5,
                                           total_profit_percent=round(rng.uniform(-50, 50), 2),
                                           max_drawdown_percent=5.0, sharpe_ratio=1.1, total_trades=n,
                                           occurred_at=at))  # fmt: skip
        elif roll < 0.97:
            events.append(SetSetting(key=f"k{n}", value=rng.choice([1, 2.5, "x", [1, 2], {"a": None}])))
        else:
            events.append(UpsertCache(symbol=f"S{n}USDT", timeframe="1h", candles_count=n))
    return events


async def _seed(url: str) -> None:
    """Two presets and three bots whose counters do not start at zero."""
    database = init_db(url)
    await database.ensure_schema()
    if database.writer.dialect.name == "postgresql":
        await _truncate_all(url)
    for name in ("p1", "p2"):
        await PresetManager.create(name=name)
    for n, size in enumerate(POSITION_SIZES, start=1):
        await BotManager.create(name=f"bot{n}", symbol="BTCUSDT", timeframe="1h", position_size=size)
    counters = {"total_signals": Bot.id * 10, "total_wins": Bot.id * 4, "total_losses": Bot.id * 6}
    async with transaction() as session:  # total_profit: 12.34 per bot id, in units of 10^-8
        await session.execute(update(Bot).values(**counters, total_profit=Bot.id * units(1_234_000_000)))


async def _snapshot() -> dict[str, list[dict[str, Any]]]:
    snapshot: dict[str, list[dict[str, Any]]] = {}
    async with transaction() as session:
        for model, order in (
            (Bot, Bot.name),
            (Preset, Preset.name),
            (Signal, Signal.uid),
            (BacktestResult, BacktestResult.event_id),
            (Setting, Setting.key),
            (DataCacheInfo, DataCacheInfo.symbol),
        ):
            rows = (await session.scalars(select(model).order_by(order))).all()
            snapshot[model.__tablename__] = [
                {key: value for key, value in row.to_dict().items() if key not in WALL_CLOCK | _seeded(model)}
                for row in rows
            ]
        snapshot["processed_events"] = [
            {"count": (await session.execute(text("SELECT count(*) FROM processed_events"))).scalar_one()}
        ]
    return snapshot


def _seeded(model: type[Any]) -> set[str]:
    """Columns the seed or the database sets at different instants in each run."""
    return {"created_at"} if model in (Bot, Preset, Setting, DataCacheInfo) else set()


async def _in_large_jobs(events: list[BaseEvent]) -> None:
    for start in range(0, len(events), 1000):
        await apply_in_transaction(events[start : start + 1000])


async def _one_per_job_shuffled(events: list[BaseEvent], config: Config) -> None:
    shuffled = list(events)
    random.Random(len(events)).shuffle(shuffled)
    for event in shuffled:
        result = await apply_events({"job_try": 1, "config": config}, [event.to_wire()])
        assert result["dead_lettered"] == 0, result
    for _ in range(len(events) + 1):  # every pass applies at least one parked event, or none are left
        outcome = await retry_parked(config.park_timeout_s, full=True)
        if not any(outcome.values()):
            break
    async with transaction() as session:
        assert (await session.execute(text("SELECT count(*) FROM parked_events"))).scalar_one() == 0


Path_ = Callable[[list[BaseEvent]], Awaitable[None]]


@pytest.mark.postgres
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=streams())
async def test_every_path_ends_in_the_same_rows(events: list[BaseEvent], tmp_path: Path, postgres_url: str) -> None:
    run = uuid.uuid4().hex[:8]  # hypothesis seeds `random` alike for every example
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    large = f"sqlite+aiosqlite:///{tmp_path}/{run}-large.db"
    one_by_one = f"sqlite+aiosqlite:///{tmp_path}/{run}-one.db"
    for name, url, apply in (
        ("large jobs, SQLite writer thread", large, _in_large_jobs),
        ("one job per event, shuffled", one_by_one, None),
        ("large jobs, PostgreSQL", postgres_url, _in_large_jobs),
    ):
        await _seed(url)
        try:
            if apply is None:
                await _one_per_job_shuffled(events, Config(database_url=url))
            else:
                await apply(events)
            results[name] = await _snapshot()
        finally:
            await close_db()
    reference, *others = results.items()
    for name, snapshot in others:
        for table, rows in reference[1].items():
            assert snapshot[table] == rows, f"{name} differs from {reference[0]} in {table}"
