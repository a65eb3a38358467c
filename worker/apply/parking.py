"""Parking: events whose dependency is missing wait in `parked_events` and are retried in the background.

A `signal.closed` may arrive before its `signal.created`, a signal before its bot. Such an event
is not applied wrongly and not dropped: it is parked (durably, in the database) together with
what it waits for (`WAITS_FOR`), and retried by a background pass (`retry_parked`), never inside
another job's transaction:

- soon after a batch that applied or parked something (`request_pass`), a *quick* pass looks, with
  one read on the read-only engine, for parked events whose dependency exists now (only where the
  dependency's table has grown, or something was parked, since the last look) and retries those;
- at least every `FULL_PASS_EVERY_S` a *full* pass looks at every parked event: those whose
  dependency exists, those of unknown dependency whose back-off has passed, and those parked
  longer than `park_timeout_s`, which are dead-lettered unless they apply now.

The worker's cron job (every 5 s) holds a Redis lock, so one pass runs at a time across the
workers of a queue, and while parked events remain it stays for a window (`pass_window`) that
runs a quick pass as soon as one is asked for. An event whose dependency is still missing costs
nothing but its share of a read: 20,000 parked events used to be retried one by one inside the
batches of other jobs, and made every write wait seconds. Retries and dead letters are written in
slices (at most `SLICE_EVENTS` events or `SLICE_S` seconds per transaction), so a write waits for
at most one slice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from events import parse_event
from events.catalogue import BaseEvent
from events.wire import dumps, loads
from worker.apply.bulk import TRADING_ORDER, record_processed
from worker.apply.faults import describe, is_event_fault
from worker.apply.handlers import handle
from worker.apply.registry import apply_trading
from worker.store.db import Database, get_database, read_session, transaction
from worker.store.errors import MissingDependencyError
from worker.store.managers.dead_letters import DeadLetterManager
from worker.store.models import Bot, ParkedEvent, Preset, ProcessedEvent, Signal
from worker.store.types import utc_now

log = logging.getLogger("komas.worker")
BACKOFF_S = (1, 2, 5, 10, 20, 30, 60)

#: What a parked event of each type waits for: the kind of row, and the event's field naming it.
#: Only a shortcut: the applier has the final say when the event is retried, and an event of a
#: type not listed here is retried on its back-off.
WAITS_FOR: dict[str, tuple[str, str]] = {
    "signal.created": ("bot", "bot_id"),
    "bot.toggled": ("bot", "bot_id"),
    "backtest.finished": ("preset", "preset_id"),
    "signal.closed": ("signal", "signal_uid"),
}
#: The tables behind each kind, and their integer primary keys (whose maximum tells that rows were added).
KIND_TABLES: dict[str, Any] = {"bot": Bot, "preset": Preset, "signal": Signal}

#: A full pass at least this often (seconds; the cron job comes every 5 s); quick passes in between when asked for.
FULL_PASS_EVERY_S = 4.0
#: How long the cron job stays to run the passes asked for, while parked events remain (under its 5 s period).
PASS_WINDOW_S = 4.0
#: One write transaction of a pass holds at most this many events, or runs at most this long.
SLICE_EVENTS = 200
SLICE_S = 0.025
#: Events one look picks up (a pass asks for another when it found this many).
PAGE = 2000
#: A pass stops after this long and asks for another, so a cron run never nears its timeout.
PASS_BUDGET_S = 4.0


def next_attempt(attempts: int, now: datetime) -> datetime:
    return now + timedelta(seconds=BACKOFF_S[min(attempts - 1, len(BACKOFF_S) - 1)])


def waiting_for(event: BaseEvent) -> tuple[str | None, int | None, str | None]:
    """What the event waits for: (kind, id) for a bot or preset, (kind, uid) for a signal; Nones if unknown."""
    kind_field = WAITS_FOR.get(event.type)
    value = getattr(event, kind_field[1], None) if kind_field is not None else None
    if kind_field is None or value is None:
        return None, None, None
    kind = kind_field[0]
    return (kind, None, str(value)) if kind == "signal" else (kind, int(value), None)


async def park(event: BaseEvent, reason: str) -> None:
    """Store the event to be retried (an event already parked keeps its first-seen time)."""
    now = utc_now()
    kind, key_id, key_uid = waiting_for(event)
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
                waiting_for=kind,
                waiting_for_id=key_id,
                waiting_for_uid=key_uid,
            )
        )
    database = get_database()
    database.parked_hint = True
    _watch(database).parked_kinds.add(kind)
    log.info("event %s (%s) parked: %s", event_id, event.type, reason)


async def has_parked() -> bool:
    """Answered from memory when this process knows the table is empty (asked before every quick pass).

    Events are parked only by the worker (the single writer) through `park`, which sets the hint;
    a pass that removes rows makes it unknown again, and then one read on the read-only engine
    settles it. A second worker (PostgreSQL scale-out) parking events unseen only delays their
    retry until the full pass, which always reads the table.
    """
    database = get_database()
    if database.parked_hint is not None:
        return database.parked_hint
    database.parked_hint = await _any_parked()
    return database.parked_hint


async def parked_count() -> int:
    """How many events are parked (one read on the read-only engine)."""
    async with read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(ParkedEvent)) or 0)


async def _any_parked() -> bool:
    """One read on the read-only engine: no write lock, so the writer is not held up."""
    async with read_session() as session:
        return await session.scalar(select(ParkedEvent.event_id).limit(1)) is not None


# --- when a pass runs -------------------------------------------------------------------------------


@dataclass
class _Passes:
    """This process's passes: asked for, running, when the last full one began, whether events remain."""

    requested: bool = False
    running: bool = False
    last_full: float = -math.inf
    #: Whether parked events remained after the last pass (the window stays open only then).
    waiting: bool = False
    #: Set by `request_pass` while a `pass_window` is open.
    wakeup: asyncio.Event | None = None


PASSES = _Passes()


def request_pass() -> None:
    """Ask for a quick pass soon (at once when a window is open): something may have become ready."""
    PASSES.requested = True
    if PASSES.wakeup is not None:
        PASSES.wakeup.set()


async def pass_window(seconds: float | None = None) -> AsyncGenerator[None, None]:
    """Yield when a pass may be due: at once, then each time one is asked for, while parked events remain.

    For at most `seconds` (`PASS_WINDOW_S`); with nothing parked it ends after the first, so a
    worker with nothing parked (a burst run too) is not held up.
    """
    until = time.monotonic() + (PASS_WINDOW_S if seconds is None else seconds)
    wakeup = PASSES.wakeup = asyncio.Event()
    try:
        yield
        while PASSES.waiting and (remaining := until - time.monotonic()) > 0:
            if not PASSES.requested:
                wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), remaining)
                if not PASSES.requested:
                    return
            yield
    finally:
        if PASSES.wakeup is wakeup:
            PASSES.wakeup = None


@dataclass
class _Watch:
    """Per database: what the last look saw, so a quick pass looks only where something changed."""

    #: Kind → the highest id of its table at the last look.
    newest: dict[str, int | None] = field(default_factory=dict)
    #: Kinds of the events parked since the last look (None: unknown dependency).
    parked_kinds: set[str | None] = field(default_factory=set)


_WATCHES: weakref.WeakKeyDictionary[Database, _Watch] = weakref.WeakKeyDictionary()


def _watch(database: Database) -> _Watch:
    watch = _WATCHES.get(database)
    if watch is None:
        watch = _WATCHES[database] = _Watch()
    return watch


async def retry_parked(park_timeout_s: int, *, full: bool | None = None) -> dict[str, int]:
    """The background pass, if one is due: full every `FULL_PASS_EVERY_S`, quick when asked for.

    `full` forces a pass of that scope. Returns how many events were applied, stayed parked or
    were dead-lettered; nothing when no pass was due or one is running in this process already.
    """
    now = time.monotonic()
    if PASSES.running:
        return {}
    if full is None:
        full = now - PASSES.last_full >= FULL_PASS_EVERY_S
        if not full and not PASSES.requested:
            return {}
    PASSES.running, PASSES.requested = True, False
    if full:
        PASSES.last_full = now
    try:
        outcome, finished = await _pass(park_timeout_s, full=full)
    except BaseException:
        PASSES.requested = True  # try again at the next run
        raise
    finally:
        PASSES.running = False
    if not finished or outcome["applied"]:  # more to do, or what applied may unblock others (a create its close)
        PASSES.requested = True
    if any(outcome.values()):
        log.info("parked events retried (%s pass): %s", "full" if full else "quick", outcome)
    return outcome


# --- one pass --------------------------------------------------------------------------------------


async def _pass(park_timeout_s: int, *, full: bool) -> tuple[dict[str, int], bool]:
    """Look for what can be retried, then retry it in slices; returns the outcome and whether it got through."""
    outcome = {"applied": 0, "parked": 0, "dead": 0}
    database = get_database()
    if not (await _any_parked() if full else await has_parked()):
        if full:
            database.parked_hint = False
        PASSES.waiting = False
        return outcome, True
    watch = _watch(database)
    parked_kinds, watch.parked_kinds = watch.parked_kinds, set()
    deadline = time.monotonic() + PASS_BUDGET_S
    finished = False
    try:
        newest = await _newest_ids()
        kinds = set(KIND_TABLES) if full else {k for k in KIND_TABLES if newest[k] != watch.newest.get(k)}
        ready = await _ready(kinds | {kind for kind in parked_kinds if kind is not None}, unknown=full)
        finished = await _retry_in_slices([(event_id, True) for event_id in ready], park_timeout_s, outcome, deadline)
        finished = finished and len(ready) < PAGE
        if full and finished:
            expired = await _expired(park_timeout_s)
            finished = await _retry_in_slices(expired, park_timeout_s, outcome, deadline) and len(expired) < PAGE
        if finished:
            watch.newest = newest
    finally:
        if not finished:
            watch.parked_kinds |= parked_kinds  # look there again next time
        if outcome["applied"] or outcome["dead"]:
            database.parked_hint = None  # rows left the table
    PASSES.waiting = await has_parked()
    return outcome, finished


async def _newest_ids() -> dict[str, int | None]:
    """The highest id of each dependency table: one cheap read (each a walk down its primary key)."""
    columns = [select(func.max(table.id)).scalar_subquery().label(kind) for kind, table in KIND_TABLES.items()]
    async with read_session() as session:
        row = (await session.execute(select(*columns))).one()
    return dict(zip(KIND_TABLES, row, strict=True))


def _dependency_exists(kinds: set[str]) -> ColumnElement[bool]:
    """True for a parked event of one of `kinds` whose dependency is there now."""
    checks = []
    for kind in sorted(kinds):
        table = KIND_TABLES[kind]
        key = table.uid == ParkedEvent.waiting_for_uid if kind == "signal" else table.id == ParkedEvent.waiting_for_id
        checks.append(and_(ParkedEvent.waiting_for == kind, exists().where(key)))
    return or_(false(), *checks)


async def _ready(kinds: set[str], *, unknown: bool) -> list[str]:
    """Parked events worth a try now, oldest first: their dependency exists (or, with `unknown`, is not known)."""
    if not kinds and not unknown:
        return []
    candidates = _dependency_exists(kinds)
    if unknown:
        candidates = or_(candidates, ParkedEvent.waiting_for.is_(None))
    # Back-off only for events tried again already: one just parked may have lost a race with its dependency.
    due = or_(ParkedEvent.attempts <= 1, ParkedEvent.next_attempt_at <= utc_now())
    query = (
        select(ParkedEvent.event_id)
        .where(due, candidates)
        .order_by(ParkedEvent.first_seen_at, ParkedEvent.event_id)
        .limit(PAGE)
    )
    async with read_session() as session:
        return list((await session.scalars(query)).all())


async def _expired(park_timeout_s: int) -> list[tuple[str, bool]]:
    """Events parked longer than the timeout, oldest first, each with whether it is worth a last try."""
    worth_a_try = or_(_dependency_exists(set(KIND_TABLES)), ParkedEvent.waiting_for.is_(None))
    query = (
        select(ParkedEvent.event_id, worth_a_try)
        .where(ParkedEvent.first_seen_at <= utc_now() - timedelta(seconds=park_timeout_s))
        .order_by(ParkedEvent.first_seen_at, ParkedEvent.event_id)
        .limit(PAGE)
    )
    async with read_session() as session:
        return [(event_id, bool(flag)) for event_id, flag in (await session.execute(query)).all()]


async def _retry_in_slices(
    items: list[tuple[str, bool]], park_timeout_s: int, outcome: dict[str, int], deadline: float
) -> bool:
    """Retry (True) or dead-letter (False) each event, in write transactions of at most SLICE_EVENTS / SLICE_S.

    Between slices the write lock goes to whoever queued for it meanwhile (asyncio's lock is fair).
    Returns False when the pass's time ran out first.
    """
    pending = deque(items)
    while pending:
        if time.monotonic() > deadline:
            return False
        chunk = [pending.popleft() for _ in range(min(SLICE_EVENTS, len(pending)))]
        async with transaction() as session:
            started = time.monotonic()
            query = select(ParkedEvent).where(ParkedEvent.event_id.in_([event_id for event_id, _ in chunk]))
            rows = {row.event_id: row for row in (await session.scalars(query.with_for_update(skip_locked=True)))}
            tries = [rows[event_id] for event_id, attempt in chunk if attempt and event_id in rows]
            if tries and await _apply_together(session, tries):
                outcome["applied"] += len(tries)
                chunk = [(event_id, attempt) for event_id, attempt in chunk if not attempt]
            for index, (event_id, attempt) in enumerate(chunk):
                if index and time.monotonic() - started >= SLICE_S:
                    pending.extendleft(reversed(chunk[index:]))
                    break
                row = rows.get(event_id)
                if row is None:  # gone since the look (applied, dead-lettered), or locked by another pass
                    continue
                if attempt:
                    outcome[await _retry_one(session, row, park_timeout_s)] += 1
                else:
                    await _dead_letter(session, row, f"dependency still missing after {park_timeout_s}s: {row.reason}")
                    outcome["dead"] += 1
        await asyncio.sleep(0)
    return True


async def _apply_together(session: AsyncSession, rows: list[ParkedEvent]) -> bool:
    """Apply these parked trading events at once, set-based (a savepoint of the slice); False if any fails.

    The common case (every dependency there) costs a few statements instead of an applier's
    round trips per event; when it fails, the caller tries each on its own and learns which.
    """
    try:
        events = [parse_event(loads(row.payload)) for row in rows]
    except Exception:  # a payload that no longer parses: found out one by one
        return False
    if not all(event.type in TRADING_ORDER for event in events):
        return False
    ids = [row.event_id for row in rows]
    try:
        async with session.begin_nested():
            await session.run_sync(lambda sync: apply_trading(sync.connection(), events, parked_too=False))
            await session.execute(
                delete(ParkedEvent).where(ParkedEvent.event_id.in_(ids)).execution_options(synchronize_session=False)
            )
    except Exception as exc:
        if not is_event_fault(exc):
            raise
        return False
    # The set-based statements bypassed the identity map; what the slice still does (dead letters) reads none of it.
    for row in rows:
        session.expunge(row)
    return True


async def _retry_one(session: AsyncSession, row: ParkedEvent, park_timeout_s: int) -> str:
    """Try one parked event in a savepoint of the slice's transaction; returns 'applied', 'parked' or 'dead'."""
    event_id, first_seen_at, attempts = row.event_id, row.first_seen_at, row.attempts
    event = parse_event(loads(row.payload))
    try:
        async with session.begin_nested():
            if await session.get(ProcessedEvent, event_id) is None:
                await handle(session, event)
                await session.run_sync(lambda sync: record_processed(sync.connection(), [event], [event_id]))
            await session.execute(delete(ParkedEvent).where(ParkedEvent.event_id == event_id))
        return "applied"
    except MissingDependencyError as exc:
        now = utc_now()
        if now - first_seen_at >= timedelta(seconds=park_timeout_s):
            await _dead_letter(session, row, f"dependency still missing after {park_timeout_s}s: {exc}")
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
        await _dead_letter(session, row, describe(exc))
        return "dead"


async def _dead_letter(session: AsyncSession, row: ParkedEvent, reason: str) -> None:
    """In the slice's transaction: the event becomes a dead letter and leaves the parked ones."""
    event_id, event_type, payload = row.event_id, row.event_type, row.payload
    await DeadLetterManager.record(payload, reason, event_id=event_id, event_type=event_type)
    await session.execute(delete(ParkedEvent).where(ParkedEvent.event_id == event_id))
    log.error("parked event %s dead-lettered: %s", event_id, reason)
