"""Parking: what a parked event waits for, the background pass (quick, full, in slices, one at a time), the hint.

The passes run here on SQLite and PostgreSQL without arq; the worker's cron job around them (and
20,000 parked events against real writes) is tested in `tests/faults/test_parked_cost.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from events import BacktestFinished, BotToggled, SignalClosed, SignalCreated
from events.catalogue import BaseEvent
from worker import BotManager, SignalManager, close_db, init_db
from worker.apply.parking import PASSES, has_parked, park, pass_window, request_pass, retry_parked, waiting_for
from worker.runtime.redis_lock import redis_lock
from worker.store.db import Database, get_database, transaction
from worker.store.models import DeadLetter, ParkedEvent, ProcessedEvent
from worker.store.types import utc_now


@pytest.fixture(autouse=True)
def fresh_passes() -> Iterator[None]:
    """The pass schedule is per process: each test starts with none run and none asked for."""
    PASSES.requested, PASSES.running, PASSES.last_full, PASSES.waiting = False, False, float("-inf"), False
    yield
    PASSES.requested, PASSES.running, PASSES.last_full, PASSES.waiting = False, False, float("-inf"), False


@pytest.fixture
async def database(sqlite_url: str) -> AsyncIterator[Database]:
    database = init_db(sqlite_url)
    await database.ensure_schema()
    yield database
    await close_db()


def a_close(uid: str = "nowhere") -> SignalClosed:
    return SignalClosed(signal_uid=uid, exit_price=1.0, exit_reason="sl", pnl_percent=-1.0)


def a_create(bot_id: int, uid: str) -> SignalCreated:
    return SignalCreated(
        signal_uid=uid, bot_id=bot_id, symbol="BTCUSDT", timeframe="1h", direction="long", entry_price=1.0
    )


async def parked_rows() -> dict[str, ParkedEvent]:
    async with transaction() as session:
        return {row.event_id: row for row in (await session.scalars(select(ParkedEvent))).all()}


async def count(model: type[Any]) -> int:
    async with transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def park_all(events: Sequence[BaseEvent]) -> None:
    for item in events:
        await park(item, "missing")


# --- what a parked event waits for ------------------------------------------------------------------


def test_each_trading_event_says_what_it_waits_for() -> None:
    preset_event = BacktestFinished(
        preset_id=7, symbol="BTCUSDT", timeframe="1h", win_rate=1.0, profit_factor=1.0, total_profit_percent=1.0,
        max_drawdown_percent=1.0, sharpe_ratio=1.0, total_trades=1,
    )  # fmt: skip
    assert waiting_for(a_create(3, "u")) == ("bot", 3, None)
    assert waiting_for(BotToggled(bot_id=4, active=True)) == ("bot", 4, None)
    assert waiting_for(preset_event) == ("preset", 7, None)
    assert waiting_for(a_close("u-1")) == ("signal", None, "u-1")


# --- the hint -------------------------------------------------------------------------------------


async def test_an_empty_table_is_read_once_then_known(database: Database) -> None:
    assert database.parked_hint is None
    assert await has_parked() is False
    assert database.parked_hint is False


async def test_parking_sets_the_hint_and_a_pass_that_removes_rows_reads_it_again(database: Database) -> None:
    assert await has_parked() is False
    await park(a_close(), "signal missing")
    assert get_database().parked_hint is True

    assert (await retry_parked(600, full=False))["applied"] == 0  # its signal still does not exist
    assert database.parked_hint is True  # nothing left the table

    bot = await BotManager.create(name="b", symbol="BTCUSDT", timeframe="1h")
    await SignalManager.create(uid="nowhere", bot_id=bot.id, symbol="BTCUSDT", timeframe="1h",
                               direction="long", entry_price=1.0)  # fmt: skip
    assert (await retry_parked(600, full=False))["applied"] == 1
    assert database.parked_hint is False  # rows left the table: read again at the end of the pass
    assert not PASSES.waiting


async def test_a_full_pass_with_nothing_parked_costs_no_write(database: Database) -> None:
    commits: list[int] = []
    event.listen(database.writer.sync_engine, "commit", lambda _conn: commits.append(1))
    assert await retry_parked(600, full=True) == {"applied": 0, "parked": 0, "dead": 0}
    assert database.parked_hint is False
    assert commits == []


async def test_a_full_pass_still_finds_events_parked_by_another_process(database: Database) -> None:
    bot = await BotManager.create(name="b", symbol="BTCUSDT", timeframe="1h")
    await park(BotToggled(bot_id=bot.id, active=True), "bot missing")  # as another worker would: behind the hint
    database.parked_hint = False

    assert await retry_parked(600, full=False) == {"applied": 0, "parked": 0, "dead": 0}  # trusts the hint
    assert (await retry_parked(600, full=True))["applied"] == 1  # reads the table


# --- quick and full passes ------------------------------------------------------------------------


async def test_a_quick_pass_retries_only_the_events_whose_dependency_arrived(db: Database) -> None:
    bot = await BotManager.create(name="b", symbol="BTCUSDT", timeframe="1h")
    waiting = [a_create(bot.id + 1000 + n, f"orphan-{n}") for n in range(30)]
    close = a_close("late")
    await park_all([*waiting, close])
    assert await retry_parked(600, full=False) == {"applied": 0, "parked": 0, "dead": 0}

    await SignalManager.create(uid="late", bot_id=bot.id, symbol="BTCUSDT", timeframe="1h",
                               direction="long", entry_price=1.0)  # fmt: skip
    outcome = await retry_parked(600, full=False)

    assert outcome == {"applied": 1, "parked": 0, "dead": 0}
    rows = await parked_rows()
    assert set(rows) == {str(e.event_id) for e in waiting}
    assert {row.attempts for row in rows.values()} == {1}  # never tried: their bots do not exist
    async with transaction() as session:
        assert await session.get(ProcessedEvent, str(close.event_id)) is not None


async def test_a_parked_create_then_its_parked_close_apply_once_the_bot_exists(db: Database) -> None:
    """The create applies in one pass; that pass asks for another, which finds the close ready."""
    bot = await BotManager.create(name="b", symbol="BTCUSDT", timeframe="1h")
    create, close = a_create(bot.id + 1, "chain"), a_close("chain")
    await park_all([create, close])
    other = await BotManager.create(name="c", symbol="BTCUSDT", timeframe="1h")
    assert other.id == bot.id + 1

    first = await retry_parked(600)
    assert first["applied"] == 1
    assert PASSES.requested  # what applied may unblock others
    second = await retry_parked(600)
    assert second["applied"] == 1
    assert await count(ParkedEvent) == 0
    signal = await SignalManager.get_by_uid("chain")
    assert signal is not None
    assert signal.status == "closed"


async def test_a_full_pass_dead_letters_what_waited_too_long_without_trying_it(db: Database) -> None:
    bot = await BotManager.create(name="b", symbol="BTCUSDT", timeframe="1h")
    orphan, ready = a_create(bot.id + 50, "old-orphan"), BotToggled(bot_id=bot.id, active=True)
    await park(orphan, f"bot {bot.id + 50} does not exist")
    await park(ready, "raced with its bot")
    async with transaction() as session:  # both parked an hour ago; neither retried since
        await session.execute(update(ParkedEvent).values(first_seen_at=utc_now() - timedelta(hours=1), attempts=5))

    outcome = await retry_parked(60, full=True)

    assert outcome == {"applied": 1, "parked": 0, "dead": 1}
    async with transaction() as session:
        letters = (await session.scalars(select(DeadLetter))).all()
    assert [letter.event_id for letter in letters] == [str(orphan.event_id)]
    assert letters[0].reason == f"dependency still missing after 60s: bot {bot.id + 50} does not exist"
    assert await count(ParkedEvent) == 0


async def test_an_event_of_unknown_dependency_is_retried_on_its_back_off_by_full_passes(db: Database) -> None:
    """Rows parked before revision 0004 say nothing of what they wait for."""
    await park(BotToggled(bot_id=999, active=True), "bot missing")
    async with transaction() as session:
        await session.execute(update(ParkedEvent).values(waiting_for=None, waiting_for_id=None))

    assert (await retry_parked(600, full=False))["parked"] == 0  # a quick pass does not look at it
    assert (await retry_parked(600, full=True))["parked"] == 1  # tried (bot still missing): back-off
    assert (await retry_parked(600, full=True))["parked"] == 0  # not due yet
    (row,) = (await parked_rows()).values()
    assert row.attempts == 2
    assert row.next_attempt_at > utc_now()


# --- slices, budget, one pass at a time -----------------------------------------------------------


@pytest.mark.parametrize(
    ("slice_events", "slice_s", "one_bad", "slices"),
    [(10, 60.0, False, 5), (1000, 0.0, True, 2)],
    ids=[
        "at most 10 events a slice, each slice applied set-based",
        "a slice that fails set-based goes one by one, for at most no time: one event, the rest next slice",
    ],
)
async def test_retries_commit_in_slices_and_a_write_waiting_for_the_lock_goes_between(
    db: Database, monkeypatch: pytest.MonkeyPatch, slice_events: int, slice_s: float, one_bad: bool, slices: int
) -> None:
    import worker.apply.parking

    monkeypatch.setattr(worker.apply.parking, "SLICE_EVENTS", slice_events)
    monkeypatch.setattr(worker.apply.parking, "SLICE_S", slice_s)
    bot = await BotManager.create(name="b", symbol="BTCUSDT", timeframe="1h")
    closes = [a_close(f"s{n}") for n in range(45)]
    await park_all(closes)
    async with transaction() as session:
        for n in range(45):
            await SignalManager.create(uid=f"s{n}", bot_id=bot.id, symbol="BTCUSDT", timeframe="1h",
                                       direction="long", entry_price=1.0)  # fmt: skip
        await session.flush()
    if one_bad:  # the oldest parked close finds its signal closed already: it cannot apply
        await SignalManager.close_by_uid("s0", exit_price=2.0, exit_reason="tp1", pnl_percent=1.0)
    order: list[str] = []
    transactions: list[int] = []

    @contextlib.asynccontextmanager
    async def counted() -> AsyncIterator[AsyncSession]:
        async with transaction() as session:
            transactions.append(1)
            yield session

    monkeypatch.setattr(worker.apply.parking, "transaction", counted)

    async def write_meanwhile() -> None:
        await asyncio.sleep(0)  # queue for the lock once the pass holds it
        async with transaction() as session:
            await session.execute(select(1))
            order.append("write")

    async def one_pass() -> dict[str, int]:
        outcome = await retry_parked(600, full=False)
        order.append("pass done")
        return outcome

    outcome, _ = await asyncio.gather(one_pass(), write_meanwhile())

    assert outcome == {"applied": 45 - one_bad, "parked": 0, "dead": int(one_bad)}
    assert len(transactions) == slices
    assert order == ["write", "pass done"]  # it did not wait for the whole pass
    assert await count(ParkedEvent) == 0
    assert await count(ProcessedEvent) == 45 - one_bad


async def test_a_pass_runs_when_due_and_one_at_a_time(database: Database) -> None:
    assert await retry_parked(600) == {"applied": 0, "parked": 0, "dead": 0}  # the first is full
    assert await retry_parked(600) == {}  # nothing asked for, the next full one is seconds away
    request_pass()
    assert await retry_parked(600) == {"applied": 0, "parked": 0, "dead": 0}
    assert not PASSES.requested

    PASSES.running = True  # another run of the cron job is in a pass
    request_pass()
    assert await retry_parked(600) == {}
    assert PASSES.requested  # still asked for: the next run does it


async def test_a_failed_pass_is_asked_for_again(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    import worker.apply.parking

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(worker.apply.parking, "_pass", broken)
    with pytest.raises(RuntimeError):
        await retry_parked(600, full=True)
    assert PASSES.requested
    assert not PASSES.running


async def test_the_window_ends_at_once_with_nothing_parked(database: Database) -> None:
    yields = 0
    async for _ in pass_window(30.0):
        yields += 1
        await retry_parked(600)
    assert yields == 1


async def test_the_window_runs_a_pass_as_soon_as_one_is_asked_for_while_events_are_parked(db: Database) -> None:
    """A batch that brings a dependency wakes the open window: the parked close applies without waiting."""
    bot = await BotManager.create(name="b", symbol="BTCUSDT", timeframe="1h")
    await park(a_close("woken"), "signal missing")
    outcomes: list[dict[str, int]] = []
    first_pass_done = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def passes() -> None:
        async for _ in pass_window(20.0):
            outcomes.append(await retry_parked(600))
            first_pass_done.set()

    async def a_batch_brings_the_create() -> None:
        await first_pass_done.wait()
        await SignalManager.create(uid="woken", bot_id=bot.id, symbol="BTCUSDT", timeframe="1h",
                                   direction="long", entry_price=1.0)  # fmt: skip
        request_pass()  # what process_batch does after a batch that applied something

    await asyncio.wait_for(asyncio.gather(passes(), a_batch_brings_the_create()), timeout=10)

    assert outcomes[0] == {"applied": 0, "parked": 0, "dead": 0}
    assert outcomes[1] == {"applied": 1, "parked": 0, "dead": 0}
    assert len(outcomes) == 2  # nothing parked any more: the window closed
    assert loop.time() - started < 5


async def test_the_cron_job_does_nothing_while_another_process_holds_the_queues_lock(
    db: Database, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import worker.apply.parking
    from worker.config import Config
    from worker.runtime.jobs import retry_parked_job

    monkeypatch.setattr(worker.apply.parking, "PASS_WINDOW_S", 0.3)
    await park(a_close("held"), "signal missing")
    client = aioredis.Redis.from_url(redis_url)
    config = Config(queue=f"komas:test:{uuid.uuid4().hex}", lock_ttl_s=3)
    ctx: dict[str, Any] = {"redis": client, "config": config}
    try:
        async with redis_lock(client, f"{config.queue}:parked-retry", 3) as held:  # another worker's pass
            assert held
            assert await retry_parked_job(ctx) == {}
        assert await retry_parked_job(ctx) == {"applied": 0, "parked": 0, "dead": 0}  # a full pass, then a window
        assert await client.exists(f"{config.queue}:parked-retry") == 0  # released
    finally:
        await client.aclose()


async def test_the_redis_lock_has_one_holder_and_is_renewed_and_released(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    key = f"komas:test:{uuid.uuid4().hex}:parked-retry"
    try:
        async with redis_lock(client, key, 0.3) as first:
            assert first is True
            async with redis_lock(client, key, 0.3) as second:
                assert second is False
            await asyncio.sleep(0.5)  # longer than the TTL: renewed meanwhile
            assert await client.exists(key) == 1
            async with redis_lock(client, key, 0.3) as third:
                assert third is False
        assert await client.exists(key) == 0
        async with redis_lock(client, key, 0.3) as again:
            assert again is True
        async with redis_lock(None, key, 0.3) as without_redis:
            assert without_redis is True
    finally:
        await client.delete(key)
        await client.aclose()
