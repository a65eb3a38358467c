"""End to end: Publisher → real Redis → a real arq worker (burst mode) → a real SQLite file.

Each test has its own queue on the shared Redis and its own database file; the worker is the one
`komas worker` runs (`worker.runtime.runner.build_worker`), stopped by burst mode once the queue is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.jobs import Job
from sqlalchemy import case, func, select

import worker.apply.parking
import worker.runtime.runner
from events import BacktestFinished, BaseEvent, BotToggled, Publisher, SignalClosed, SignalCreated, SyncPublisher
from events.wire import dumps, encode_job, loads
from tests.e2e.conftest import E2E
from worker import BotManager, PresetManager, SignalManager, close_db
from worker.runtime.group_commit import GroupCommitter
from worker.runtime.runner import build_worker
from worker.store.db import read_session
from worker.store.models import BacktestResult, Bot, DeadLetter, ParkedEvent, ProcessedEvent, Signal


def created(bot_id: int, uid: str, **fields: Any) -> SignalCreated:
    values: dict[str, Any] = {
        "signal_uid": uid,
        "bot_id": bot_id,
        "symbol": "BTCUSDT",
        "timeframe": "15m",
        "direction": "long",
        "entry_price": 100.0,
        "source": f"bot:{bot_id}",
    }
    return SignalCreated(**{**values, **fields})


def closed(uid: str, pnl_percent: float, pnl_amount: float | None = None) -> SignalClosed:
    return SignalClosed(
        signal_uid=uid,
        exit_price=100.0 * (1 + pnl_percent / 100),
        exit_reason="tp1" if pnl_percent > 0 else "sl",
        pnl_percent=pnl_percent,
        pnl_amount=pnl_amount,
    )


def ids(*events: BaseEvent) -> list[str]:
    return [str(event.event_id) for event in events]


async def count(model: type[Any]) -> int:
    async with read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def processed_ids() -> list[str]:
    async with read_session() as session:
        return list((await session.scalars(select(ProcessedEvent.event_id))).all())


async def bot_stats() -> dict[int, tuple[int, int, int, float]]:
    async with read_session() as session:
        rows = await session.execute(
            select(Bot.id, Bot.total_signals, Bot.total_wins, Bot.total_losses, Bot.total_profit)
        )
        return {bot_id: (signals, wins, losses, profit) for bot_id, signals, wins, losses, profit in rows}


async def stats_from_signals() -> dict[int, tuple[int, int, int, float]]:
    """What the signals table says each bot's stats are (one SQL aggregate)."""
    query = (
        select(
            Signal.bot_id,
            func.count(),
            func.sum(case((Signal.pnl_percent > 0, 1), else_=0)),
            func.sum(case((Signal.pnl_percent <= 0, 1), else_=0)),
            func.coalesce(func.sum(Signal.pnl_amount), 0.0),
        )
        .where(Signal.status == "closed")
        .group_by(Signal.bot_id)
    )
    async with read_session() as session:
        rows = await session.execute(query)
        return {bot_id: (n, int(wins), int(losses), float(profit)) for bot_id, n, wins, losses, profit in rows}


async def make_bot(name: str, position_size: float = 100.0, **fields: Any) -> int:
    bot = await BotManager.create(name=name, symbol="BTCUSDT", timeframe="15m", position_size=position_size, **fields)
    return bot.id


# --- (a) signals ---------------------------------------------------------------------------------


async def test_signals_published_appear_in_the_signals_table(e2e: E2E) -> None:
    bot_id = await make_bot("alpha")
    at = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    first = created(
        bot_id,
        "alpha:1",
        symbol="ETHUSDT",
        timeframe="4h",
        direction="short",
        entry_price=3500.25,
        stop_loss=3600.0,
        take_profits=[{"percent": 2.0, "amount": 60.0, "price": 3430.0}],
        indicator_values={"rsi": 71.5, "trend": {"ema": [3490.1, 3480.7]}},
        occurred_at=at,
    )
    second = created(bot_id, "alpha:2", occurred_at=at + timedelta(minutes=15))

    async with Publisher.connect(e2e.config.redis_url, queue=e2e.queue) as publisher:
        job_ids = e2e.track([await publisher.publish(first), await publisher.publish(second)])
    arq_worker = await e2e.run_worker()

    assert arq_worker.jobs_complete >= 2
    for job_id, event in zip(job_ids, (first, second), strict=True):
        assert (await e2e.result(job_id))["applied_ids"] == ids(event)
        info = await Job(job_id, e2e.pool, _queue_name=e2e.queue, _deserializer=loads).result_info()
        assert info is not None
        assert not info.args  # Redis does not keep the events again for an hour
    signal = await SignalManager.get_by_uid("alpha:1")
    assert signal is not None
    assert (signal.bot_id, signal.symbol, signal.timeframe, signal.direction) == (bot_id, "ETHUSDT", "4h", "short")
    assert (signal.status, signal.entry_price, signal.stop_loss) == ("active", 3500.25, 3600.0)
    assert signal.take_profits == [{"percent": 2.0, "amount": 60.0, "price": 3430.0}]
    assert signal.indicator_values == {"rsi": 71.5, "trend": {"ema": [3490.1, 3480.7]}}
    assert signal.created_at == at
    assert signal.created_at.tzinfo is not None
    assert signal.closed_at is None
    assert await count(Signal) == 2
    bot = await BotManager.get(bot_id)
    assert bot is not None
    assert bot.last_signal_at == at + timedelta(minutes=15)
    assert sorted(await processed_ids()) == sorted(ids(first, second))


async def test_single_event_jobs_queued_together_share_one_commit(e2e: E2E) -> None:
    """What makes one job per event fast: the jobs one poll finds run as a unit, and their events commit together."""
    bot_id = await make_bot("together")
    events = [created(bot_id, f"together:{n}") for n in range(30)]
    async with Publisher.connect(e2e.config.redis_url, queue=e2e.queue) as publisher:
        job_ids = e2e.track([await publisher.publish(event) for event in events])
    committers: list[GroupCommitter] = []

    class Counted(GroupCommitter):
        def start(self) -> None:
            committers.append(self)
            super().start()

    e2e.monkeypatch.setattr(worker.runtime.runner, "GroupCommitter", Counted)
    arq_worker = await e2e.run_worker()

    assert arq_worker.jobs_complete >= 30
    assert sorted(await processed_ids()) == sorted(ids(*events))
    assert [job["applied_ids"] for job in [await e2e.result(job_id) for job_id in job_ids]] == [
        ids(event) for event in events
    ]
    (committer,) = committers
    assert (committer.submissions, committer.rounds) == (30, 1)


async def test_the_worker_health_line_lives_seconds_not_an_hour(e2e: E2E) -> None:
    """`komas status` reads it: a dead worker's line must vanish soon, not after arq's default hour."""
    await close_db()
    arq_worker = build_worker(e2e.config, handle_signals=False)
    main = asyncio.ensure_future(arq_worker.main())
    key = f"{e2e.queue}:health-check"
    try:
        deadline = time.monotonic() + 10
        while not await e2e.pool.exists(key):
            assert time.monotonic() < deadline, "the worker wrote no health line"
            assert not main.done()
            await asyncio.sleep(0.02)
        ttl_ms = await e2e.pool.pttl(key)
    finally:
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await main
        await arq_worker.close()
    assert 0 < ttl_ms <= 11_000


# --- (b) a mixed stream --------------------------------------------------------------------------


async def test_a_mixed_stream_leaves_bot_stats_equal_to_the_signals_table(e2e: E2E) -> None:
    rng = random.Random(20240601)
    sizes = {"small": 40.0, "medium": 100.0, "large": 250.0}
    bots = {name: await make_bot(name, size) for name, size in sizes.items()}
    expected: dict[int, list[float]] = {bot_id: [0, 0, 0, 0.0] for bot_id in bots.values()}
    streams: list[list[BaseEvent]] = []
    for name, bot_id in bots.items():
        creates = [created(bot_id, f"{name}:{n}", entry_price=rng.uniform(10, 1000)) for n in range(20)]
        closes: list[BaseEvent] = []
        for n in range(20):
            pnl = 0.0 if n == 0 else round(rng.uniform(-8, 8), 3)  # exactly 0 counts as a loss
            amount = round(rng.uniform(-20, 20), 2) if n % 3 == 0 else None
            closes.append(closed(f"{name}:{n}", pnl, amount))
            tally = expected[bot_id]
            tally[0] += 1
            tally[1 if pnl > 0 else 2] += 1
            tally[3] += amount if amount is not None else sizes[name] * pnl / 100
        rng.shuffle(closes)
        toggles = [BotToggled(bot_id=bot_id, active=True), BotToggled(bot_id=bot_id, active=False)]
        streams.append([*creates, toggles[0], *closes, toggles[1]])

    async with Publisher.connect(e2e.config.redis_url, queue=e2e.queue) as publisher:
        job_ids = [e2e.track(await publisher.publish_many(stream)) for stream in streams]
    assert all(len(jobs) == 1 for jobs in job_ids)
    await e2e.run_worker()

    every_id = [event_id for stream in streams for event_id in ids(*stream)]
    assert len(every_id) == 3 * 42
    for jobs, stream in zip(job_ids, streams, strict=True):
        result = await e2e.result(jobs[0])
        assert result["applied_ids"] == ids(*stream)
        assert result["dead_lettered"] == result["parked"] == result["duplicates"] == 0

    stats, from_signals = await bot_stats(), await stats_from_signals()
    assert set(stats) == set(from_signals) == set(bots.values())
    for bot_id in bots.values():
        signals, wins, losses, profit = stats[bot_id]
        assert (signals, wins, losses) == from_signals[bot_id][:3]
        assert profit == pytest.approx(from_signals[bot_id][3], abs=1e-9)
        assert (signals, wins, losses) == tuple(expected[bot_id][:3])
        assert profit == pytest.approx(expected[bot_id][3], abs=1e-9)
        assert losses >= 1  # the pnl of exactly 0
    assert await count(Signal) == 60
    assert all(not bot.is_active for bot in await BotManager.list_all())
    processed = await processed_ids()
    assert len(processed) == len(set(processed)) == len(every_id)
    assert set(processed) == set(every_id)
    assert await count(DeadLetter) == await count(ParkedEvent) == 0


# --- (c) backtests -------------------------------------------------------------------------------


async def test_backtest_finished_updates_the_preset_and_adds_a_history_row(e2e: E2E) -> None:
    preset = await PresetManager.create(name="trg-fast", settings={"period": 14})
    other = await PresetManager.create(name="untouched")
    first = BacktestFinished(
        preset_id=preset.id,
        symbol="BTCUSDT",
        timeframe="1h",
        win_rate=48.0,
        profit_factor=0.9,
        total_profit_percent=-4.5,
        max_drawdown_percent=22.0,
        sharpe_ratio=-0.3,
        total_trades=80,
        params={"period": 14},
        source="optimizer",
    )
    latest = BacktestFinished(
        preset_id=preset.id,
        symbol="BTCUSDT",
        timeframe="4h",
        win_rate=61.25,
        profit_factor=1.85,
        total_profit_percent=37.5,
        max_drawdown_percent=9.75,
        sharpe_ratio=1.42,
        total_trades=156,
        params={"period": 21, "mult": 2.5},
        source="optimizer",
    )
    async with Publisher.connect(e2e.config.redis_url, queue=e2e.queue) as publisher:
        (job_id,) = e2e.track(await publisher.publish_many([first, latest]))
    await e2e.run_worker()

    assert (await e2e.result(job_id))["applied"] == 2
    stored = await PresetManager.get(preset.id)
    assert stored is not None
    metrics = (
        stored.win_rate,
        stored.profit_factor,
        stored.total_profit_percent,
        stored.max_drawdown_percent,
        stored.sharpe_ratio,
    )
    assert metrics == (61.25, 1.85, 37.5, 9.75, 1.42)
    assert stored.last_used_at is not None
    assert stored.settings == {"period": 14}  # the performance update leaves the rest alone
    untouched = await PresetManager.get(other.id)
    assert untouched is not None
    assert untouched.win_rate is None
    async with read_session() as session:
        rows = (await session.scalars(select(BacktestResult).order_by(BacktestResult.id))).all()
    assert [row.event_id for row in rows] == ids(first, latest)
    assert [row.preset_id for row in rows] == [preset.id, preset.id]
    assert (rows[1].timeframe, rows[1].total_trades, rows[1].params) == ("4h", 156, {"period": 21, "mult": 2.5})
    assert (rows[0].win_rate, rows[0].sharpe_ratio) == (48.0, -0.3)


# --- (d) toggles ---------------------------------------------------------------------------------


async def test_bot_toggled_switches_a_bot_on_and_off(e2e: E2E) -> None:
    bot_id = await make_bot("toggly")
    bystander = await make_bot("bystander", is_active=True)

    async def toggle(active: bool) -> bool:
        async with Publisher.connect(e2e.config.redis_url, queue=e2e.queue) as publisher:
            e2e.track([await publisher.publish(BotToggled(bot_id=bot_id, active=active, source="api"))])
        await e2e.run_worker()
        bot, other = await BotManager.get(bot_id), await BotManager.get(bystander)
        assert bot is not None
        assert other is not None
        assert other.is_active is True
        return bot.is_active

    assert await toggle(True) is True
    assert await toggle(False) is False
    assert await toggle(False) is False
    assert await toggle(True) is True


# --- (e) the same events twice -------------------------------------------------------------------


async def test_events_published_twice_apply_once(e2e: E2E) -> None:
    bot_id = await make_bot("twice", position_size=50.0)
    events: list[BaseEvent] = [created(bot_id, f"t{n}") for n in range(5)]
    events += [closed(f"t{n}", pnl) for n, pnl in enumerate([2.0, -1.0, 3.5])]
    events.append(BotToggled(bot_id=bot_id, active=True))

    async with Publisher.connect(e2e.config.redis_url, queue=e2e.queue) as publisher:
        (first_job,) = e2e.track(await publisher.publish_many(events))
    await e2e.run_worker()
    assert (await e2e.result(first_job))["applied"] == 9
    stats_before, signals_before = await bot_stats(), await count(Signal)

    # Redelivered: once more as one job, and once more split over several jobs in one worker run.
    async with Publisher.connect(e2e.config.redis_url, queue=e2e.queue) as publisher:
        (again,) = e2e.track(await publisher.publish_many(events))
        (single,) = e2e.track([await publisher.publish(events[5])])
    await e2e.run_worker()

    result = await e2e.result(again)
    assert result["applied"] == 0
    assert result["duplicates"] == 9
    assert sorted(result["duplicate_ids"]) == sorted(ids(*events))
    assert (await e2e.result(single))["duplicate_ids"] == ids(events[5])
    assert await bot_stats() == stats_before
    assert stats_before[bot_id][:3] == (3, 2, 1)
    assert await count(Signal) == signals_before == 5
    assert sorted(await processed_ids()) == sorted(ids(*events))
    assert await count(DeadLetter) == 0


# --- (f) bad input -------------------------------------------------------------------------------


async def test_a_job_with_an_invalid_and_a_dangling_event_applies_its_neighbours(e2e: E2E) -> None:
    bot_id = await make_bot("neighbours")
    before, after = created(bot_id, "n:1"), created(bot_id, "n:2")
    invalid = {**created(bot_id, "n:bad").to_wire(), "entry_price": -3.0}
    dangling = created(bot_id + 1000, "n:orphan")
    raw = [before.to_wire(), invalid, dangling.to_wire(), after.to_wire()]
    job_id = await e2e.enqueue_raw(encode_job([dumps(event) for event in raw]).body)
    await e2e.run_worker()

    result = await e2e.result(job_id)
    assert sorted(result["applied_ids"]) == sorted(ids(before, after))
    assert result["dead_lettered"] == 1
    (letter,) = result["dead_letters"]
    assert letter["event_id"] == invalid["event_id"]
    assert "entry_price" in letter["reason"]
    assert result["parked_ids"] == ids(dangling)
    assert "dead_lettered" in result  # every event is accounted for
    assert result["applied"] + result["dead_lettered"] + result["parked"] == len(raw)

    assert sorted(signal.uid for signal in await SignalManager.list_recent()) == ["n:1", "n:2"]
    assert sorted(await processed_ids()) == sorted(ids(before, after))
    async with read_session() as session:
        letters = (await session.scalars(select(DeadLetter))).all()
        parked = (await session.scalars(select(ParkedEvent))).all()
    assert [row.event_id for row in letters] == [invalid["event_id"]]
    assert loads(letters[0].payload) == invalid
    assert [row.event_id for row in parked] == ids(dangling)
    assert f"bot {bot_id + 1000} does not exist" in parked[0].reason


async def test_a_burst_worker_stops_while_an_event_stays_parked(e2e: E2E) -> None:
    """The parked-events cron job runs one pass in a burst worker: a pass window held open while an
    event waits for a bot that never comes kept the queue non-empty, and `--burst` never returned."""
    bot_id = await make_bot("never-parent")
    dangling = created(bot_id + 1000, "burst:orphan")
    await e2e.enqueue_raw(encode_job([dumps(dangling.to_wire())]).body)
    await e2e.run_worker()  # parks it
    # The next run's startup pass finds it parked: a window this long would outlast the test's timeout.
    e2e.monkeypatch.setattr(worker.apply.parking, "PASS_WINDOW_S", 3600.0)
    async with asyncio.timeout(60):
        await e2e.run_worker()
    async with read_session() as session:
        assert [row.event_id for row in (await session.scalars(select(ParkedEvent))).all()] == ids(dangling)


async def test_a_hand_written_json_job_is_applied(e2e: E2E) -> None:
    bot_id = await make_bot("polyglot")
    event_id = str(uuid.uuid4())
    body = (
        '{"t":null,"f":"apply_events","k":{},"et":1700000000000,"a":[[{"type":"bot.toggled",'
        f'"event_id":"{event_id}","occurred_at":"2024-01-01T00:00:00+00:00","source":"go:producer",'
        f'"bot_id":{bot_id},"active":true}}]]}}'
    )
    job_id = await e2e.enqueue_raw(body.encode())
    await e2e.run_worker()
    assert (await e2e.result(job_id))["applied_ids"] == [event_id]
    bot = await BotManager.get(bot_id)
    assert bot is not None
    assert bot.is_active is True


async def test_a_job_that_is_not_json_is_dead_lettered_with_its_bytes(e2e: E2E) -> None:
    job_id = await e2e.enqueue_raw(b"\x80\x04\x95not json, maybe pickle")
    arq_worker = await e2e.run_worker()
    assert arq_worker.jobs_complete >= 1
    assert (await e2e.result(job_id))["dead_lettered"] == 1
    async with read_session() as session:
        (letter,) = (await session.scalars(select(DeadLetter))).all()
    assert "not json, maybe pickle" in letter.payload
    assert "not valid JSON" in letter.reason


# --- (g) the synchronous publisher ---------------------------------------------------------------


async def test_sync_publisher_end_to_end(e2e: E2E) -> None:
    bot_id = await make_bot("optimizer-fed", position_size=80.0)
    preset = await PresetManager.create(name="from-a-process-pool")
    events: list[BaseEvent] = [
        created(bot_id, "sync:1"),
        closed("sync:1", -2.5),
        BacktestFinished(
            preset_id=preset.id,
            symbol="BTCUSDT",
            timeframe="1d",
            win_rate=50.0,
            profit_factor=1.0,
            total_profit_percent=0.0,
            max_drawdown_percent=5.0,
            sharpe_ratio=0.0,
            total_trades=10,
        ),
    ]

    def publish_blocking() -> list[str]:
        with SyncPublisher.connect(e2e.config.redis_url, queue=e2e.queue) as publisher:
            return [publisher.publish(events[0]), *publisher.publish_many(events[1:])]

    job_ids = e2e.track(await asyncio.to_thread(publish_blocking))
    await e2e.run_worker()

    applied = [event_id for job_id in job_ids for event_id in (await e2e.result(job_id))["applied_ids"]]
    assert sorted(applied) == sorted(ids(*events))
    signal = await SignalManager.get_by_uid("sync:1")
    assert signal is not None
    assert (signal.status, signal.pnl_percent) == ("closed", -2.5)
    assert signal.pnl_amount == pytest.approx(-2.0)
    stats = (await bot_stats())[bot_id]
    assert stats[:3] == (1, 0, 1)
    assert stats[3] == pytest.approx(-2.0)
    stored = await PresetManager.get(preset.id)
    assert stored is not None
    assert (stored.win_rate, stored.total_profit_percent, stored.sharpe_ratio) == (50.0, 0.0, 0.0)
