"""Whatever a producer writes, every event it sent is accounted for, and jobs start in the documented order.

Job bodies are written byte by byte into the real Redis, as a producer in another language would
(the README's wire format), and run by the real worker in burst mode on a real SQLite file.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import literal_column, select

from events import BotToggled
from events.wire import JOB_KEY_PREFIX
from tests.e2e.conftest import E2E
from worker import BotManager
from worker.store.db import read_session
from worker.store.models import DeadLetter, ProcessedEvent


async def applied_in_order() -> list[str]:
    """Applied event ids in the order they were recorded (SQLite's rowid)."""
    query = select(ProcessedEvent.event_id).order_by(literal_column("rowid"))
    async with read_session() as session:
        return list((await session.scalars(query)).all())


async def write_job(e2e: E2E, job_id: str, body: bytes, score: float) -> None:
    async with e2e.pool.pipeline(transaction=True) as pipe:
        pipe.set(JOB_KEY_PREFIX + job_id, body, px=3_600_000)
        pipe.zadd(e2e.queue, {job_id: score})
        await pipe.execute()
    e2e.track([job_id])


def job_body(events: list[Any]) -> bytes:
    return json.dumps({"t": None, "f": "apply_events", "a": [events], "k": {}, "et": int(time.time() * 1000)}).encode()


async def test_jobs_of_one_millisecond_start_in_the_order_of_their_ids_as_the_readme_says(e2e: E2E) -> None:
    """The README's recipe for job ids: a producer prefix, then a zero-padded counter (then anything)."""
    bot = await BotManager.create(name="ordered", symbol="BTCUSDT", timeframe="1h")
    e2e.config = e2e.config.model_copy(update={"max_jobs": 1})  # one at a time: start order is apply order
    prefix = uuid.uuid4().hex[:8]
    events = [BotToggled(bot_id=bot.id, active=n % 2 == 0).to_wire() for n in range(30)]
    score = int(time.time() * 1000)
    jobs = [(f"{prefix}-{n:016x}-{uuid.uuid4().hex}", job_body([event])) for n, event in enumerate(events)]
    for job_id, body in random.Random(3).sample(jobs, len(jobs)):  # written in any order, one score
        await write_job(e2e, job_id, body, score)
    await e2e.run_worker()
    assert await applied_in_order() == [event["event_id"] for event in events]


async def test_a_job_scored_zero_negative_or_minus_infinity_runs_at_once(e2e: E2E) -> None:
    bot = await BotManager.create(name="early", symbol="BTCUSDT", timeframe="1h")
    events = [BotToggled(bot_id=bot.id, active=True).to_wire() for _ in range(4)]
    for event, score in zip(events, (0, -5, float("-inf"), 1), strict=True):
        await write_job(e2e, uuid.uuid4().hex, job_body([event]), score)
    await e2e.run_worker()
    assert sorted(await applied_in_order()) == sorted(event["event_id"] for event in events)


# --- every event accounted for, whatever the job ------------------------------------------------


@dataclass
class Sent:
    """One job as written: its id, whether its shape is the documented one, and the ids of its events."""

    job_id: str
    well_formed: bool
    good: list[str]
    bad: list[str]


def _toggle(bot_id: int) -> dict[str, Any]:
    return BotToggled(bot_id=bot_id, active=True).to_wire()


#: Ways to spoil one event (each keeps a valid event id, so its outcome can be found).
SPOILERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "missing field": lambda e: {k: v for k, v in e.items() if k != "active"},
    "extra field": lambda e: {**e, "surprise": 1},
    "wrong type": lambda e: {**e, "active": "yes please"},
    "negative bot id": lambda e: {**e, "bot_id": -1},
    "unknown type": lambda e: {**e, "type": "bot.exploded"},
    "calendar edge": lambda e: {**e, "occurred_at": "9999-12-31T23:59:59-05:00"},
    "not a date": lambda e: {**e, "occurred_at": "yesterday"},
    "too large": lambda e: {**e, "source": "x" * 300},
}

#: Ways to spoil a whole job (the job is dead-lettered as one row).
JOB_SPOILERS: dict[str, Callable[[list[Any]], bytes]] = {
    "events not wrapped": lambda events: json.dumps(
        {"t": None, "f": "apply_events", "a": events, "k": {}, "et": 1}
    ).encode(),
    "a keyword": lambda events: json.dumps(
        {"t": None, "f": "apply_events", "a": [events], "k": {"attempt": 1}, "et": 1}
    ).encode(),
    "et text": lambda events: json.dumps({"t": None, "f": "apply_events", "a": [events], "k": {}, "et": "x"}).encode(),
    "cut short": lambda events: job_body(events)[:-3],
    "unknown function": lambda events: json.dumps(
        {"t": None, "f": "drop_tables", "a": [events], "k": {}, "et": 1}
    ).encode(),
}

job_plans = st.lists(
    st.tuples(
        st.sampled_from([None, *JOB_SPOILERS]),
        st.lists(st.sampled_from([None, None, None, *SPOILERS]), min_size=1, max_size=6),
    ),
    min_size=1,
    max_size=6,
)


async def _run(e2e: E2E, bot_id: int, plan: list[tuple[str | None, list[str | None]]]) -> None:
    sent: list[Sent] = []
    for job_spoiler, event_spoilers in plan:
        events, good, bad = [], [], []
        for spoiler in event_spoilers:
            event = _toggle(bot_id)
            if spoiler is None:
                good.append(event["event_id"])
            else:
                event = SPOILERS[spoiler](event)
                bad.append(event["event_id"])
            events.append(event)
        body = job_body(events) if job_spoiler is None else JOB_SPOILERS[job_spoiler](events)
        job_id = uuid.uuid4().hex
        await write_job(e2e, job_id, body, time.time() * 1000)
        sent.append(Sent(job_id, job_spoiler is None, good, bad))
    await e2e.run_worker()

    applied = set(await applied_in_order())
    async with read_session() as session:
        letters = (await session.execute(select(DeadLetter.event_id, DeadLetter.reason))).all()
    ours = {event_id for job in sent for event_id in job.good + job.bad}
    dead = [event_id for event_id, _ in letters if event_id in ours]
    assert len(dead) == len(set(dead)), "an event dead-lettered twice"
    for job in sent:
        naming = [
            reason for event_id, reason in letters if event_id is None and reason.startswith(f"job {job.job_id}:")
        ]
        if job.well_formed:
            assert naming == []
            assert set(job.good) <= applied, "a good event of a well-formed job was not applied"
            assert set(job.bad) <= set(dead), "a bad event of a well-formed job was not dead-lettered"
            assert not set(job.bad) & applied
        else:
            assert len(naming) == 1, (job.job_id, letters)
            assert not (set(job.good) | set(job.bad)) & (applied | set(dead))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=job_plans)
async def test_every_event_of_any_job_ends_applied_or_dead_lettered_exactly_once(e2e: E2E, plan: Any) -> None:
    await e2e.open_db()
    bot = await BotManager.create(name=f"any-{uuid.uuid4().hex[:8]}", symbol="BTCUSDT", timeframe="1h")
    await _run(e2e, bot.id, plan)


async def test_an_event_without_event_id_is_dead_lettered_saying_why_and_its_neighbours_apply(e2e: E2E) -> None:
    bot = await BotManager.create(name="no-id", symbol="BTCUSDT", timeframe="1h")
    good = BotToggled(bot_id=bot.id, active=True).to_wire()
    anonymous = {
        key: value for key, value in BotToggled(bot_id=bot.id, active=False).to_wire().items() if key != "event_id"
    }
    job_id = uuid.uuid4().hex
    await write_job(e2e, job_id, job_body([good, anonymous]), time.time() * 1000)
    await e2e.run_worker()
    result = await e2e.result(job_id)
    assert result["applied_ids"] == [good["event_id"]]
    (letter,) = result["dead_letters"]
    assert letter["event_id"] is None
    assert "event_id: required on the wire" in letter["reason"]
