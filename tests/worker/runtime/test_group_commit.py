"""The group committer: concurrent jobs share one transaction, and a failing group fails no job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from events import BotToggled, SignalClosed, SignalCreated
from events.catalogue import BaseEvent
from worker import BotManager, close_db, init_db
from worker.runtime.group_commit import GroupCommitter, RunAlone
from worker.runtime.jobs import apply_events, apply_in_transaction
from worker.store.db import read_session
from worker.store.models import Bot, DeadLetter, ProcessedEvent, Signal


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until `condition` holds; bounded, so a bug fails instead of hanging."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def toggle(bot_id: int = 1, active: bool = True) -> BotToggled:
    return BotToggled(bot_id=bot_id, active=active)


class RecordingApply:
    """A stand-in writer: records each group it is given; fails groups holding a 'bad' event."""

    def __init__(self, bad: set[str] | None = None) -> None:
        self.groups: list[list[str]] = []
        self.bad = bad or set()
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, events: list[BaseEvent]) -> tuple[list[bool], dict[str, Any]]:
        await self.gate.wait()
        ids = [str(event.event_id) for event in events]
        self.groups.append(ids)
        if self.bad & set(ids):
            raise ValueError("bad event in the group")
        return [True] * len(events), {event_id: {"seen": event_id} for event_id in ids}


async def test_jobs_waiting_together_share_one_round_and_each_gets_its_own_answer() -> None:
    apply = RecordingApply()
    apply.gate.clear()  # hold the first round so the others queue up behind it
    committer = GroupCommitter(apply)
    committer.start()
    try:
        batches = [[toggle(), toggle()] for _ in range(6)]
        tasks = [asyncio.create_task(committer.apply(batch)) for batch in batches]
        await until(lambda: committer.waiting + len(apply.groups) >= 5)
        apply.gate.set()
        answers = await asyncio.gather(*tasks)
    finally:
        await committer.stop()

    assert len(apply.groups) < len(batches)
    assert sum(len(group) for group in apply.groups) == 12
    for batch, (flags, results) in zip(batches, answers, strict=True):
        own = {str(event.event_id) for event in batch}
        assert flags == [True, True]
        assert set(results) == own  # no job sees another job's answers


async def test_a_group_is_cut_at_the_event_limit_but_never_splits_a_job() -> None:
    apply = RecordingApply()
    apply.gate.clear()
    committer = GroupCommitter(apply, max_group_events=3)
    committer.start()
    try:
        tasks = [asyncio.create_task(committer.apply([toggle(), toggle()])) for _ in range(4)]
        await until(lambda: committer.waiting >= 3)
        apply.gate.set()
        await asyncio.gather(*tasks)
    finally:
        await committer.stop()
    assert all(len(group) % 2 == 0 for group in apply.groups)
    assert all(len(group) <= 3 or len(group) == 2 for group in apply.groups)


async def test_a_failed_group_tells_every_job_to_run_alone() -> None:
    bad = toggle()
    apply = RecordingApply(bad={str(bad.event_id)})
    apply.gate.clear()
    committer = GroupCommitter(apply)
    committer.start()
    try:
        first = asyncio.create_task(committer.apply([toggle()]))
        await until(lambda: bool(apply.groups) or committer.waiting > 0)
        others = [asyncio.create_task(committer.apply(batch)) for batch in ([bad], [toggle()])]
        await until(lambda: committer.waiting >= 2)
        apply.gate.set()
        results = await asyncio.gather(first, *others, return_exceptions=True)
    finally:
        await committer.stop()
    assert not isinstance(results[0], BaseException)  # it committed before the bad group gathered
    assert [type(result) for result in results[1:]] == [RunAlone, RunAlone]


async def test_a_lone_job_sees_its_own_error() -> None:
    bad = toggle()
    committer = GroupCommitter(RecordingApply(bad={str(bad.event_id)}))
    committer.start()
    try:
        with pytest.raises(ValueError, match="bad event"):
            await committer.apply([bad])
    finally:
        await committer.stop()


async def test_without_a_running_writer_a_job_applies_by_itself() -> None:
    apply = RecordingApply()
    committer = GroupCommitter(apply)
    flags, _ = await committer.apply([toggle()])
    assert flags == [True]
    assert len(apply.groups) == 1


async def test_stop_sends_waiting_jobs_to_run_alone() -> None:
    apply = RecordingApply()
    apply.gate.clear()
    committer = GroupCommitter(apply)
    committer.start()
    tasks = [asyncio.create_task(committer.apply([toggle()])) for _ in range(3)]
    await until(lambda: committer.waiting + len(apply.groups) >= 3)
    await committer.stop()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(result, RunAlone) for result in results)


# --- with the real writer on a SQLite file -------------------------------------------------------


@pytest.fixture
async def committer(sqlite_url: str) -> AsyncIterator[GroupCommitter]:
    database = init_db(sqlite_url)
    await database.ensure_schema()
    await BotManager.create(name="alpha", symbol="BTCUSDT", timeframe="1h", position_size=100.0)
    committer = GroupCommitter(apply_in_transaction)
    committer.start()
    yield committer
    await committer.stop()
    await close_db()


def created(uid: str) -> SignalCreated:
    return SignalCreated(
        signal_uid=uid, bot_id=1, symbol="BTCUSDT", timeframe="1h", direction="long", entry_price=100.0
    )


async def test_concurrent_jobs_commit_in_fewer_transactions_and_a_bad_job_harms_no_other(
    committer: GroupCommitter,
) -> None:
    jobs: list[list[BaseEvent]] = [
        [created(f"s{job}"), SignalClosed(signal_uid=f"s{job}", exit_price=101, exit_reason="tp", pnl_percent=1.0)]
        for job in range(20)
    ]
    jobs[7].append(created("s3"))  # refused: uid taken by job 3 (or by itself, if it came first)
    ctx: dict[str, Any] = {"job_try": 1, "committer": committer}

    results = await asyncio.gather(*(apply_events(ctx, [event.to_wire() for event in job]) for job in jobs))

    assert committer.rounds < len(jobs)
    assert sum(result["applied"] for result in results) == 40
    assert results[7]["dead_lettered"] == 1
    async with read_session() as session:
        assert await session.scalar(select(func.count()).select_from(Signal)) == 20
        assert await session.scalar(select(func.count()).select_from(ProcessedEvent)) == 40
        assert await session.scalar(select(func.count()).select_from(DeadLetter)) == 1
        bot = await session.get(Bot, 1)
    assert bot is not None
    assert (bot.total_signals, bot.total_wins) == (20, 20)
    assert bot.total_profit == pytest.approx(20 * 1.0)


async def test_the_same_event_in_two_jobs_of_one_group_applies_once(committer: GroupCommitter) -> None:
    event = created("twice")
    ctx: dict[str, Any] = {"job_try": 1, "committer": committer}
    first, second = await asyncio.gather(apply_events(ctx, [event.to_wire()]), apply_events(ctx, [event.to_wire()]))
    assert sorted([first["applied"], second["applied"]]) == [0, 1]
    assert sorted([first["duplicates"], second["duplicates"]]) == [0, 1]


async def test_a_round_waits_for_a_job_that_started_but_has_not_handed_in_its_events() -> None:
    apply = RecordingApply()
    committer = GroupCommitter(apply, gather_s=30)
    committer.start()
    validated = asyncio.Event()

    async def job(ready: asyncio.Event | None) -> tuple[list[bool], dict[str, Any]]:
        with committer.expecting():
            if ready is not None:
                await ready.wait()  # still validating when the other job hands in its events
            return await committer.apply([toggle()])

    try:
        slow = asyncio.create_task(job(validated))
        fast = asyncio.create_task(job(None))
        await until(lambda: committer.waiting == 1)
        validated.set()
        await asyncio.wait_for(asyncio.gather(slow, fast), 5)
    finally:
        await committer.stop()
    assert len(apply.groups) == 1  # one commit for both


async def test_a_job_that_ends_without_events_does_not_hold_the_round() -> None:
    apply = RecordingApply()
    committer = GroupCommitter(apply, gather_s=30)
    committer.start()
    leave = asyncio.Event()

    async def empty_job() -> None:
        with committer.expecting():
            await leave.wait()  # e.g. every event of its batch was invalid

    try:
        idle = asyncio.create_task(empty_job())
        submitted = asyncio.create_task(committer.apply([toggle()]))
        await until(lambda: committer.waiting == 1)
        leave.set()
        flags, _ = await asyncio.wait_for(submitted, 5)  # not 30 s: the round goes once the job is gone
        await idle
    finally:
        await committer.stop()
    assert flags == [True]
