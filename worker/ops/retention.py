"""Retention (`purge`): what may be forgotten, each part with its own setting, in small transactions.

- `processed_events` older than the dedup window (`KOMAS_DEDUP_WINDOW_S`, which the configuration
  keeps longer than a job can wait in Redis plus the park timeout: an id is never forgotten while a
  delivery of it can still come);
- replayed dead letters older than `KOMAS_RETENTION_DEAD_LETTERS_DAYS`;
- closed and cancelled signals older than `KOMAS_RETENTION_SIGNALS_DAYS` (off by default: history is
  valuable). An open signal is never touched, and the bots' counters keep what purged signals added.

Rows go in slices of `SLICE_ROWS`, each its own short write transaction, with a pause after each as
long as it took, so events keep flowing (the p99 of publish→commit stays within tens of ms).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import InstrumentedAttribute

from worker.config import Config
from worker.store.db import read_session, transaction
from worker.store.models import DeadLetter, ProcessedEvent, Signal
from worker.store.rules import OPEN_STATUSES
from worker.store.types import utc_now

#: Rows per slice: one short write transaction each. Its cost is in pages: event ids are random UUIDs, so
#: each deleted row dirties a page of the primary key of its own (250 rows: about 40 ms on a small VM).
SLICE_ROWS = 100
#: After each slice the purge waits this many times as long as the slice took: events get the writer
#: at least that share of the time (a purge of 2,000-row slices back to back held events up for 1.5 s).
YIELD_FACTOR = 1.0


async def _count(condition: ColumnElement[bool], model: type[Any]) -> int:
    async with read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(condition)) or 0)


async def _delete_in_slices(key: InstrumentedAttribute[Any], condition: ColumnElement[bool]) -> int:
    """Delete the rows matching `condition`, `SLICE_ROWS` a transaction, leaving the writer to the events between."""
    deleted = 0
    chosen = select(key).where(condition).limit(SLICE_ROWS).scalar_subquery()
    while True:
        started = time.monotonic()
        async with transaction() as session:
            result = await session.execute(delete(key.class_).where(key.in_(chosen)))
        count = int(getattr(result, "rowcount", 0) or 0)
        deleted += count
        if count < SLICE_ROWS:
            return deleted
        await asyncio.sleep((time.monotonic() - started) * YIELD_FACTOR)


async def purge(config: Config, *, dry_run: bool = False) -> dict[str, Any]:
    """Delete what retention allows (or, `dry_run`, count it); returns each part's count and its cutoff."""
    now = utc_now()
    parts: list[tuple[str, InstrumentedAttribute[Any], ColumnElement[bool] | None, str]] = []
    processed_cutoff = now - timedelta(seconds=config.dedup_window_s)
    parts.append(
        (
            "processed_events",
            ProcessedEvent.event_id,
            ProcessedEvent.applied_at < processed_cutoff,
            f"applied before {processed_cutoff.isoformat()} (KOMAS_DEDUP_WINDOW_S)",
        )
    )
    letters_days = config.retention_dead_letters_days
    letters_cutoff = now - timedelta(days=letters_days)
    parts.append(
        (
            "dead_letters",
            DeadLetter.id,
            (DeadLetter.replayed_at.is_not(None) & (DeadLetter.replayed_at < letters_cutoff)) if letters_days else None,
            f"replayed before {letters_cutoff.isoformat()}"
            if letters_days
            else "off (KOMAS_RETENTION_DEAD_LETTERS_DAYS=0)",
        )
    )
    signal_days = config.retention_signals_days
    signal_cutoff = now - timedelta(days=signal_days)
    parts.append(
        (
            "signals",
            Signal.id,
            (Signal.status.not_in(OPEN_STATUSES) & (Signal.closed_at < signal_cutoff)) if signal_days else None,
            f"closed before {signal_cutoff.isoformat()}" if signal_days else "off (KOMAS_RETENTION_SIGNALS_DAYS=0)",
        )
    )
    report: dict[str, Any] = {"ok": True, "dry_run": dry_run}
    for name, key, condition, rule in parts:
        if condition is None:
            report[name] = {"rows": 0, "rule": rule}
            continue
        model = key.class_
        assert isinstance(model, type)
        rows = await _count(condition, model) if dry_run else await _delete_in_slices(key, condition)
        report[name] = {"rows": rows, "rule": rule}
    return report
