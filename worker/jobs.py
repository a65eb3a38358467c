"""The arq job `apply_events`: validate, deduplicate, apply in one transaction, record ids, commit.

A batch that fails on one event is split in halves until the bad event stands alone, so one bad
event never blocks or rolls back the good ones around it. Failures of the machinery (database
locked, disk full) are not the events' fault: the job is retried later by arq instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from arq import Retry
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from events import EventValidationError, parse_event
from events.catalogue import BaseEvent
from worker.db import transaction
from worker.errors import KomasError
from worker.handlers import handle
from worker.models import ProcessedEvent

log = logging.getLogger("komas.worker")
RETRY_BACKOFF_S = (1, 2, 5, 10, 30, 60)


@dataclass
class BatchReport:
    """What became of every event of a job; the job's (JSON) result."""

    applied: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    invalid: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def as_result(self) -> dict[str, Any]:
        return {
            "applied": len(self.applied),
            "duplicates": len(self.duplicates),
            "invalid": self.invalid,
            "failed": self.failed,
            "applied_ids": self.applied,
            "duplicate_ids": self.duplicates,
        }


def validate(raw_events: Sequence[Any], report: BatchReport) -> list[BaseEvent]:
    """Parse each payload; invalid ones are reported with their raw payload, the others go on."""
    valid: list[BaseEvent] = []
    for raw in raw_events:
        try:
            valid.append(parse_event(raw))
        except EventValidationError as exc:
            event_id = raw.get("event_id") if isinstance(raw, dict) else None
            log.error("invalid event %s dropped from batch: %s; payload=%r", event_id, exc, raw)
            report.invalid.append({"event_id": event_id, "reason": str(exc), "payload": raw})
    return valid


async def drop_duplicates(events: list[BaseEvent], report: BatchReport) -> list[BaseEvent]:
    """Remove ids seen earlier in the batch or already recorded in `processed_events` (one query)."""
    fresh: list[BaseEvent] = []
    seen: set[str] = set()
    ids = list({str(event.event_id) for event in events})
    async with transaction() as session:
        done = set(
            (
                await session.scalars(select(ProcessedEvent.event_id).where(ProcessedEvent.event_id.in_(ids)))
            ).all()
        )
    for event in events:
        event_id = str(event.event_id)
        if event_id in done or event_id in seen:
            report.duplicates.append(event_id)
        else:
            seen.add(event_id)
            fresh.append(event)
    return fresh


async def apply_all(events: list[BaseEvent]) -> None:
    """Apply events and record their ids in one transaction (all or nothing)."""
    async with transaction() as session:
        for event in events:
            await handle(event)
        await session.execute(
            insert(ProcessedEvent),
            [{"event_id": str(event.event_id), "event_type": event.type} for event in events],
        )


def _is_event_fault(exc: BaseException) -> bool:
    """Errors caused by an event's content (as opposed to the database being unavailable)."""
    return isinstance(exc, KomasError | IntegrityError | ValueError) or (
        isinstance(exc, DBAPIError) and not _is_transient(exc)
    )


def _is_transient(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower()
    return any(
        word in message for word in ("locked", "busy", "disk", "full", "i/o", "connection", "readonly")
    )


async def apply_isolating(events: list[BaseEvent], report: BatchReport) -> None:
    """Apply events; when the batch fails on an event's content, bisect until the culprit is alone."""
    if not events:
        return
    try:
        await apply_all(events)
    except Exception as exc:
        if not _is_event_fault(exc):
            raise
        if len(events) == 1:
            event = events[0]
            log.error("event %s (%s) failed: %s", event.event_id, event.type, exc)
            report.failed.append(
                {
                    "event_id": str(event.event_id),
                    "type": event.type,
                    "reason": f"{type(exc).__name__}: {exc}",
                }
            )
            return
        middle = len(events) // 2
        await apply_isolating(events[:middle], report)
        await apply_isolating(events[middle:], report)
        return
    report.applied.extend(str(event.event_id) for event in events)


async def apply_events(ctx: dict[str, Any], raw_events: list[Any]) -> dict[str, Any]:
    """The job: everything a batch of raw events needs, returning what became of each."""
    report = BatchReport()
    if not isinstance(raw_events, list):
        raw_events = [raw_events]
    try:
        events = await drop_duplicates(validate(raw_events, report), report)
        await apply_isolating(events, report)
    except DBAPIError as exc:
        job_try = int(ctx.get("job_try", 1))
        delay = RETRY_BACKOFF_S[min(job_try - 1, len(RETRY_BACKOFF_S) - 1)]
        log.warning("database unavailable (%s); job retried in %ss", exc.orig, delay)
        raise Retry(defer=delay) from exc
    log.info(
        "batch of %d: %d applied, %d duplicate, %d invalid, %d failed",
        len(raw_events),
        len(report.applied),
        len(report.duplicates),
        len(report.invalid),
        len(report.failed),
    )
    return report.as_result()
