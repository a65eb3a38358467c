"""`apply_events` called directly (no arq, no Redis) on a fresh SQLite file.

It must validate, deduplicate, apply in one transaction, and isolate a bad event by bisection,
reporting every event as applied, duplicate, parked or dead-lettered.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select

import worker.apply.bulk
import worker.runtime.jobs
from events import BotToggled, SignalClosed, SignalCreated
from events.catalogue import BaseEvent
from events.commands import DeleteSetting
from worker import BotManager, SignalManager, close_db, init_db
from worker.config import Config
from worker.runtime import jobs
from worker.runtime.group_commit import GroupCommitter
from worker.runtime.jobs import apply_events, retry_parked_job
from worker.store.db import read_session
from worker.store.managers.dead_letters import DeadLetterManager
from worker.store.models import Bot, DeadLetter, ParkedEvent, ProcessedEvent, Signal

CTX: dict[str, Any] = {"job_try": 1}


@pytest.fixture
async def bot_id(sqlite_url: str) -> AsyncIterator[int]:
    """An initialized database with one bot (position size 200)."""
    database = init_db(sqlite_url)
    await database.ensure_schema()
    bot = await BotManager.create(name="alpha", symbol="BTCUSDT", timeframe="1h", position_size=200.0)
    yield bot.id
    await close_db()


def created(bot_id: int, uid: str, **fields: Any) -> SignalCreated:
    values: dict[str, Any] = {
        "signal_uid": uid,
        "bot_id": bot_id,
        "symbol": "BTCUSDT",
        "timeframe": "1h",
        "direction": "long",
        "entry_price": 100.0,
        "source": f"bot:{bot_id}",
    }
    return SignalCreated(**{**values, **fields})


def closed(uid: str, pnl_percent: float, **fields: Any) -> SignalClosed:
    return SignalClosed(
        signal_uid=uid, exit_price=100.0 + pnl_percent, exit_reason="tp1", pnl_percent=pnl_percent, **fields
    )


def wire(*events: BaseEvent) -> list[dict[str, Any]]:
    return [event.to_wire() for event in events]


def ids(*events: BaseEvent) -> list[str]:
    return [str(event.event_id) for event in events]


async def count(model: type[Any]) -> int:
    async with read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def processed_ids() -> set[str]:
    async with read_session() as session:
        return set((await session.scalars(select(ProcessedEvent.event_id))).all())


async def get_bot(bot_id: int) -> Bot:
    bot = await BotManager.get(bot_id)
    assert bot is not None
    return bot


# --- the plain path ------------------------------------------------------------------------------


async def test_a_batch_is_applied_and_its_ids_recorded(bot_id: int) -> None:
    events = [created(bot_id, "a"), created(bot_id, "b"), closed("a", 2.0), BotToggled(bot_id=bot_id, active=True)]
    result = await apply_events(CTX, wire(*events))

    assert result["applied"] == 4
    assert result["applied_ids"] == ids(*events)
    assert (result["duplicates"], result["parked"], result["dead_lettered"], result["rejected"]) == (0, 0, 0, 0)
    assert await count(Signal) == 2
    assert await processed_ids() == set(ids(*events))
    async with read_session() as session:
        rows = (await session.execute(select(ProcessedEvent.event_id, ProcessedEvent.event_type))).all()
    types: dict[str, str] = dict(rows)
    assert types[str(events[2].event_id)] == "signal.closed"
    bot = await get_bot(bot_id)
    assert bot.is_active is True
    assert (bot.total_signals, bot.total_wins, bot.total_losses) == (1, 1, 0)
    assert bot.total_profit == pytest.approx(200.0 * 2.0 / 100)


async def test_each_job_logs_one_debug_line_naming_it(bot_id: int, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="komas.worker"):
        event = created(bot_id, "a")
        await apply_events({**CTX, "job_id": "job-42"}, wire(event, event))
    line = "job job-42, batch of 2: 1 applied, 1 duplicate, 0 parked, 0 dead-lettered, 0 rejected"
    assert [record.levelno for record in caplog.records if record.getMessage() == line] == [logging.DEBUG]


async def test_at_info_applied_work_is_summed_up_at_most_every_few_seconds(
    bot_id: int, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(jobs, "SUMMARY", jobs.WorkSummary(every_s=5.0, clock=lambda: clock[0]))
    with caplog.at_level(logging.INFO, logger="komas.worker"):
        for n in range(30):  # 30 jobs in 3 s: no line yet
            await apply_events(CTX, wire(created(bot_id, f"s{n}")))
            clock[0] += 0.1
        assert not [m for m in caplog.messages if "jobs in" in m]
        clock[0] += 2.0
        await apply_events(CTX, wire(created(bot_id, "last")))
        clock[0] += 60  # idle: nothing more is said
    summaries = [m for m in caplog.messages if "jobs in" in m]
    assert summaries == ["31 jobs in 5.0s: 31 events applied (6/s), 0 duplicate, 0 parked, 0 dead-lettered, 0 rejected"]


async def test_an_empty_batch_does_nothing(bot_id: int) -> None:
    result = await apply_events(CTX, [])
    assert result["applied"] == result["dead_lettered"] == 0
    assert await count(ProcessedEvent) == 0


# --- deduplication -------------------------------------------------------------------------------


async def test_duplicates_within_a_batch_are_applied_once(bot_id: int) -> None:
    create, close = created(bot_id, "dup"), closed("dup", -1.5)
    other = created(bot_id, "other")
    batch = wire(create, create, close, other, close, create)

    result = await apply_events(CTX, batch)

    assert result["applied_ids"] == ids(create, close, other)
    assert result["duplicates"] == 3
    assert sorted(result["duplicate_ids"]) == sorted(ids(create, close, create))
    assert await count(Signal) == 2
    assert await count(ProcessedEvent) == 3
    bot = await get_bot(bot_id)
    assert (bot.total_signals, bot.total_wins, bot.total_losses) == (1, 0, 1)
    assert bot.total_profit == pytest.approx(-3.0)


async def test_events_already_processed_are_duplicates(bot_id: int) -> None:
    events = [created(bot_id, "x"), closed("x", 3.0, pnl_amount=7.5), created(bot_id, "y")]
    first = await apply_events(CTX, wire(*events))
    assert first["applied"] == 3
    bot_before = (await get_bot(bot_id)).to_dict()

    fresh = created(bot_id, "z")
    second = await apply_events(CTX, wire(*events, fresh))

    assert second["applied_ids"] == ids(fresh)
    assert sorted(second["duplicate_ids"]) == sorted(ids(*events))
    assert second["dead_lettered"] == 0
    assert await count(Signal) == 3
    assert await count(ProcessedEvent) == 4
    bot_after = (await get_bot(bot_id)).to_dict()
    for key in ("total_signals", "total_wins", "total_losses", "total_profit"):
        assert bot_after[key] == bot_before[key], key
    assert bot_after["total_profit"] == pytest.approx(7.5)


async def test_a_second_close_with_a_new_id_is_dead_lettered_not_counted(bot_id: int) -> None:
    await apply_events(CTX, wire(created(bot_id, "once"), closed("once", 1.0)))
    again = closed("once", 5.0)
    result = await apply_events(CTX, wire(again))
    assert result["applied"] == 0
    assert [letter["event_id"] for letter in result["dead_letters"]] == ids(again)
    assert "InvalidStateError" in result["dead_letters"][0]["reason"]
    bot = await get_bot(bot_id)
    assert (bot.total_signals, bot.total_wins) == (1, 1)
    assert bot.total_profit == pytest.approx(2.0)


# --- bisection -----------------------------------------------------------------------------------


@dataclass
class ApplyCalls:
    """Every call of `apply_all`: the event ids it was given, and whether it committed."""

    calls: list[tuple[list[str], bool]] = field(default_factory=list)

    def committed(self) -> list[str]:
        return [event_id for batch, ok in self.calls if ok for event_id in batch]


@pytest.fixture
def apply_calls(monkeypatch: pytest.MonkeyPatch) -> ApplyCalls:
    record = ApplyCalls()
    real = worker.runtime.jobs.apply_all

    async def spy(
        events: list[BaseEvent], report: worker.runtime.jobs.BatchReport, committer: GroupCommitter | None = None
    ) -> None:
        batch = ids(*events)
        try:
            await real(events, report, committer)
        except Exception:
            record.calls.append((batch, False))
            raise
        record.calls.append((batch, True))

    monkeypatch.setattr(worker.runtime.jobs, "apply_all", spy)
    return record


@pytest.mark.parametrize("position", [0, 4, 5, 9])
async def test_bisection_isolates_one_bad_event_among_nine_good_ones(
    bot_id: int, apply_calls: ApplyCalls, position: int
) -> None:
    await SignalManager.create(
        bot_id=bot_id, symbol="BTCUSDT", timeframe="1h", direction="long", entry_price=1.0, uid="taken"
    )
    good = [created(bot_id, f"good-{n}") for n in range(9)]
    bad = created(bot_id, "taken")  # valid, but its uid exists: DuplicateError when applied
    batch: list[BaseEvent] = [*good[:position], bad, *good[position:]]

    result = await apply_events(CTX, wire(*batch))

    assert result["applied"] == 9
    assert sorted(result["applied_ids"]) == sorted(ids(*good))
    assert result["dead_lettered"] == 1
    (letter,) = result["dead_letters"]
    assert letter["event_id"] == str(bad.event_id)
    assert "DuplicateError" in letter["reason"]
    assert "taken" in letter["reason"]
    assert await count(Signal) == 10  # the seeded one and the nine good
    assert await processed_ids() == set(ids(*good))
    async with read_session() as session:
        stored = (await session.scalars(select(DeadLetter))).all()
    assert [row.event_id for row in stored] == [str(bad.event_id)]
    assert stored[0].event_type == "signal.created"

    # The whole batch was tried first; every good event committed exactly once; the bad one was tried alone.
    assert apply_calls.calls[0] == (ids(*batch), False)
    assert sorted(apply_calls.committed()) == sorted(ids(*good))
    assert ([str(bad.event_id)], False) in apply_calls.calls
    assert all(ok for batch_ids, ok in apply_calls.calls if str(bad.event_id) not in batch_ids)
    # Halving a batch of 10: at most 4 failing levels, each adding one good half: 1 + 2 * 4 calls.
    assert len(apply_calls.calls) <= 9


async def test_a_batch_of_good_events_commits_in_one_transaction(bot_id: int, apply_calls: ApplyCalls) -> None:
    events = [created(bot_id, f"s{n}") for n in range(10)]
    await apply_events(CTX, wire(*events))
    assert apply_calls.calls == [(ids(*events), True)]


async def test_an_event_whose_bot_is_missing_is_parked_and_the_rest_apply(bot_id: int) -> None:
    before, after = created(bot_id, "n1"), created(bot_id, "n2")
    orphan = created(bot_id + 1000, "orphan")
    result = await apply_events(CTX, wire(before, orphan, after))

    assert sorted(result["applied_ids"]) == sorted(ids(before, after))
    assert result["parked_ids"] == ids(orphan)
    assert result["dead_lettered"] == 0
    assert await processed_ids() == set(ids(before, after))
    async with read_session() as session:
        parked = (await session.scalars(select(ParkedEvent))).all()
    assert [row.event_id for row in parked] == ids(orphan)
    assert "does not exist" in parked[0].reason


async def test_a_close_before_its_create_in_one_batch_ends_applied(bot_id: int) -> None:
    close, create = closed("late", 4.0), created(bot_id, "late")
    result = await apply_events(CTX, wire(close, create))

    # Within a batch creates are applied before closes: the close finds its create, nothing parks.
    assert result["applied_ids"] == ids(close, create)
    assert result["parked_ids"] == []
    assert await count(ParkedEvent) == 0
    assert await processed_ids() == set(ids(close, create))
    signal = await SignalManager.get_by_uid("late")
    assert signal is not None
    assert signal.status == "closed"
    bot = await get_bot(bot_id)
    assert (bot.total_signals, bot.total_wins) == (1, 1)


async def test_a_close_whose_create_comes_in_a_later_batch_is_parked_then_applied(bot_id: int) -> None:
    close, create = closed("later", -2.0), created(bot_id, "later")
    first = await apply_events(CTX, wire(close))
    assert first["parked_ids"] == ids(close)
    assert await count(ParkedEvent) == 1

    second = await apply_events(CTX, wire(create))  # the batch that brings the create asks for a pass
    await retry_parked_job(CTX)  # the background pass, run by the worker's cron job

    assert second["applied_ids"] == ids(create)
    assert await count(ParkedEvent) == 0
    assert await processed_ids() == set(ids(close, create))
    bot = await get_bot(bot_id)
    assert (bot.total_signals, bot.total_losses) == (1, 1)


def test_runs_group_trading_events_by_type_but_keep_commands_in_place() -> None:
    a, b = created(1, "a"), created(1, "b")
    close_a, toggle, command = closed("a", 1.0), BotToggled(bot_id=1, active=False), DeleteSetting(key="k")
    close_b = closed("b", 1.0)
    runs = list(worker.apply.bulk.runs([close_a, a, toggle, b, command, close_b]))
    assert [(run[0].type, ids(*run)) for run in runs] == [
        ("signal.created", ids(a, b)),
        ("signal.closed", ids(close_a)),
        ("bot.toggled", ids(toggle)),
        ("settings.delete", ids(command)),
        ("signal.closed", ids(close_b)),
    ]


# --- invalid input -------------------------------------------------------------------------------


async def test_an_unexpected_error_dead_letters_only_the_events_not_applied_yet(
    bot_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier, later = created(bot_id, "earlier"), created(bot_id, "later")
    await apply_events(CTX, wire(earlier))

    async def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(worker.runtime.jobs, "apply_isolating", broken)
    result = await apply_events(CTX, wire(earlier, later))

    assert [letter["event_id"] for letter in result["dead_letters"]] == ids(later)
    assert "unexpected error: RuntimeError: boom" in result["dead_letters"][0]["reason"]
    assert await count(DeadLetter) == 1


async def test_invalid_payloads_are_dead_lettered_and_the_valid_ones_apply(bot_id: int) -> None:
    good = created(bot_id, "ok")
    wrong_bot_id = {**created(bot_id, "w1").to_wire(), "bot_id": "abc"}
    wrong_price = {**created(bot_id, "w2").to_wire(), "entry_price": "cheap"}
    unknown_type = {"type": "signal.teleported", "event_id": str(uuid.uuid4())}
    batch: list[Any] = [42, "signal.created", None, [1, 2], wrong_bot_id, good.to_wire(), wrong_price, unknown_type]

    result = await apply_events(CTX, batch)

    assert result["applied_ids"] == ids(good)
    assert result["dead_lettered"] == 7
    reasons = [letter["reason"] for letter in result["dead_letters"]]
    assert all("expected a JSON object" in reason for reason in reasons[:4])
    assert "bot_id" in reasons[4]
    assert "entry_price" in reasons[5]
    assert "type" in reasons[6]
    assert [letter["event_id"] for letter in result["dead_letters"]][4:] == [
        wrong_bot_id["event_id"],
        wrong_price["event_id"],
        unknown_type["event_id"],
    ]
    assert await count(DeadLetter) == 7
    async with read_session() as session:
        payloads = set((await session.scalars(select(DeadLetter.payload))).all())
    assert {"42", "signal.created", "null", "[1,2]"} <= payloads
    assert await processed_ids() == set(ids(good))


async def test_an_event_over_the_size_limit_is_dead_lettered(sqlite_url: str, bot_id: int) -> None:
    config = Config(database_url=sqlite_url, max_event_bytes=1_000)
    big = created(bot_id, "big", indicator_values={"blob": "x" * 2_000})
    small = created(bot_id, "small")
    result = await apply_events({"job_try": 1, "config": config}, wire(big, small))
    assert result["applied_ids"] == ids(small)
    assert result["dead_letters"][0]["event_id"] == str(big.event_id)
    assert "exceeds the limit of 1000" in result["dead_letters"][0]["reason"]


async def test_a_batch_over_the_limit_is_dead_lettered_whole(sqlite_url: str, bot_id: int) -> None:
    config = Config(database_url=sqlite_url, max_batch=3)
    events = [created(bot_id, f"m{n}") for n in range(4)]
    result = await apply_events({"job_try": 1, "config": config}, wire(*events))
    assert result["applied"] == 0
    assert result["dead_lettered"] == 1  # one row for the batch, whatever its length
    assert "a batch of 4 events, over the limit of 3" in result["dead_letters"][0]["reason"]
    assert await count(Signal) == 0
    letters = await DeadLetterManager.list_all()
    assert len(letters) == 1
    assert all(str(event.event_id) in letters[0].payload for event in events)


# --- after crashes -------------------------------------------------------------------------------


@dataclass
class FakeArq:
    """Stands in for the worker's ArqRedis: records re-enqueued jobs."""

    enqueued: list[tuple[str, list[Any], dict[str, Any]]] = field(default_factory=list)

    async def enqueue_job(self, function: str, events: list[Any], **options: Any) -> None:
        self.enqueued.append((function, events, options))


async def test_a_job_that_crashed_the_worker_too_often_is_split(sqlite_url: str, bot_id: int) -> None:
    config = Config(database_url=sqlite_url, max_crashes=2, queue="komas:test:jobs")
    arq = FakeArq()
    events = wire(*(created(bot_id, f"c{n}") for n in range(5)))
    result = await apply_events({"job_try": 3, "config": config, "redis": arq}, events)
    assert result["split"] is True
    assert [(function, batch) for function, batch, _ in arq.enqueued] == [
        ("apply_events", events[:2]),
        ("apply_events", events[2:]),
    ]
    assert all(options["_queue_name"] == "komas:test:jobs" for _, _, options in arq.enqueued)
    assert await count(Signal) == 0


async def test_a_lone_event_that_crashed_the_worker_too_often_is_dead_lettered(sqlite_url: str, bot_id: int) -> None:
    config = Config(database_url=sqlite_url, max_crashes=2)
    event = created(bot_id, "crashy")
    result = await apply_events({"job_try": 3, "config": config}, wire(event))
    assert [letter["event_id"] for letter in result["dead_letters"]] == ids(event)
    assert "crashed 2 times" in result["dead_letters"][0]["reason"]
    assert await count(Signal) == 0
