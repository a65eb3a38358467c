"""Parking: events whose dependency is missing wait in `parked_events` and are retried with back-off.

A `signal.closed` may arrive before its `signal.created`, a signal before its bot. Such an event
is not applied wrongly and not dropped: it is parked (durably, in the database), retried after
every batch that applied something and on a schedule, and dead-lettered once it has waited longer
than `park_timeout_s`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from events import parse_event
from events.catalogue import BaseEvent
from events.wire import dumps, loads
from worker.bulk import existing
from worker.db import get_database, read_session, transaction
from worker.errors import MissingDependencyError
from worker.faults import describe, is_event_fault
from worker.handlers import handle
from worker.managers.dead_letters import DeadLetterManager
from worker.models import ParkedEvent, ProcessedEvent, Signal
from worker.types import utc_now

log = logging.getLogger("komas.worker")
BACKOFF_S = (1, 2, 5, 10, 20, 30, 60)


def next_attempt(attempts: int, now: datetime) -> datetime:
    return now + timedelta(seconds=BACKOFF_S[min(attempts - 1, len(BACKOFF_S) - 1)])


async def park(event: BaseEvent, reason: str) -> None:
    """Store the event to be retried (an event already parked keeps its first-seen time)."""
    now = utc_now()
    async with transaction() as session:
        event_id = str(event.event_id)
        if await session.get(ParkedEvent, event_id) is not None:
            return
        session.add(
            ParkedEvent(
                event_id=event_id,
                event_type=event.type,
                payload=dumps(event.to_wire()).decode(),
                reason=reason,
                attempts=1,
                first_seen_at=now,
                next_attempt_at=next_attempt(1, now),
            )
        )
    get_database().parked_hint = True
    log.info("event %s (%s) parked: %s", event_id, event.type, reason)


async def has_parked() -> bool:
    """Asked after every batch, so answered from memory when this process knows the table is empty.

    Events are parked only by the worker (the single writer) through `park`, which sets the hint;
    a retry pass makes it unknown again, and then one read on the read-only engine settles it. A
    second worker (PostgreSQL scale-out) parking events unseen only delays this opportunistic retry
    until the scheduled pass, which always reads the table.
    """
    database = get_database()
    if database.parked_hint is not None:
        return database.parked_hint
    database.parked_hint = await _any_parked()
    return database.parked_hint


async def _any_parked() -> bool:
    """One read on the read-only engine: no write lock, so the writer is not held up."""
    async with read_session() as session:
        return await session.scalar(select(ParkedEvent.event_id).limit(1)) is not None


async def _retry_one(session: AsyncSession, row: ParkedEvent, park_timeout_s: int) -> str:
    """Try one parked event in a savepoint of the pass's transaction; returns 'applied', 'parked' or 'dead'."""
    event_id, first_seen_at, attempts = row.event_id, row.first_seen_at, row.attempts
    event = parse_event(loads(row.payload))
    try:
        async with session.begin_nested():
            if await session.get(ProcessedEvent, event_id) is None:
                await handle(event)
                session.add(ProcessedEvent(event_id=event_id, event_type=event.type))
            await session.execute(delete(ParkedEvent).where(ParkedEvent.event_id == event_id))
        return "applied"
    except MissingDependencyError as exc:
        now = utc_now()
        if now - first_seen_at >= timedelta(seconds=park_timeout_s):
            reason = f"dependency still missing after {park_timeout_s}s ({attempts + 1} attempts): {exc}"
            await _dead_letter(row, reason)
            return "dead"
        await session.execute(
            update(ParkedEvent)
            .where(ParkedEvent.event_id == event_id)
            .values(attempts=attempts + 1, reason=str(exc), next_attempt_at=next_attempt(attempts + 1, now))
        )
        return "parked"
    except Exception as exc:
        if not is_event_fault(exc):
            raise
        await _dead_letter(row, describe(exc))
        return "dead"


async def _dead_letter(row: ParkedEvent, reason: str) -> None:
    event_id, event_type, payload = row.event_id, row.event_type, row.payload
    async with transaction() as session:
        await DeadLetterManager.record(payload, reason, event_id=event_id, event_type=event_type)
        await session.execute(delete(ParkedEvent).where(ParkedEvent.event_id == event_id))
    log.error("parked event %s dead-lettered: %s", event_id, reason)


async def _closes_of_existing_signals(session: AsyncSession, rows: list[ParkedEvent]) -> list[ParkedEvent]:
    """Leave out parked closes whose signal still does not exist: one query instead of a failed attempt each.

    Out-of-order streams park many closes; trying each after every batch made the queue crawl.
    The scheduled pass (`due_only`) still tries them all, counts attempts and dead-letters on timeout.
    """
    uids = {row.event_id: loads(row.payload).get("signal_uid") for row in rows if row.event_type == "signal.closed"}
    if not uids:
        return rows
    present = await session.run_sync(lambda sync: existing(sync.connection(), Signal.uid, uids.values()))
    return [row for row in rows if row.event_id not in uids or uids[row.event_id] in present]


async def retry_parked(park_timeout_s: int, *, due_only: bool, limit: int = 500) -> dict[str, int]:
    """Retry parked events, oldest first (so a create is retried before its close)."""
    query = select(ParkedEvent).order_by(ParkedEvent.first_seen_at, ParkedEvent.event_id).limit(limit)
    if due_only:
        query = query.where(ParkedEvent.next_attempt_at <= utc_now())
    outcome = {"applied": 0, "parked": 0, "dead": 0}
    if get_database().parked_hint is False and not await _any_parked():
        return outcome  # the scheduled pass every few seconds: nothing to do, and no write transaction for it
    # One transaction (one commit) for the whole pass, a savepoint per event: a pass over hundreds of
    # parked events used to cost a commit each, after every batch, and starved the queue.
    get_database().parked_hint = None  # rows leave the table below, or other processes' rows are seen
    async with transaction() as session:
        rows = list((await session.scalars(query)).all())
        if not due_only:
            rows = await _closes_of_existing_signals(session, rows)
        for row in rows:
            outcome[await _retry_one(session, row, park_timeout_s)] += 1
    return outcome
