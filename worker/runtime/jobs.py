"""The arq jobs of the worker.

`apply_events` takes a batch: it validates each event (invalid ones are dead-lettered, the others
go on), skips ids already applied or parked, applies the rest and records their ids in one
transaction. A batch failing on one event's content is split in halves until the bad event stands
alone; that event is parked (dependency missing) or dead-lettered, the others commit.

The job never ends in an ordinary exception, because arq would treat it as terminal and forget the
events: when the database is unavailable the batch is re-enqueued with back-off; when the worker
crashed on the same job `max_crashes` times the batch is split into new jobs, and a single event
that keeps crashing the worker is dead-lettered.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from arq import Retry
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from events import EventValidationError
from events.catalogue import BaseEvent, parse_event, parse_events
from events.commands import Command
from events.wire import JOB_FUNCTION, encoded_size, event_id_of
from worker.apply.bulk import known_ids, record_processed, runs, split_fresh
from worker.apply.faults import describe, is_event_fault, is_transient
from worker.apply.handlers import handle
from worker.apply.parking import park, pass_window, request_pass, retry_parked
from worker.apply.registry import apply_trading, is_set_based, set_based
from worker.config import Config, get_config
from worker.failpoints import failpoint
from worker.runtime import metrics
from worker.runtime.group_commit import GroupCommitter, RunAlone
from worker.runtime.heartbeat import job_lock_heartbeat
from worker.runtime.poison import PoisonJob
from worker.runtime.redis_lock import redis_lock
from worker.store.db import current_session, get_database, transaction
from worker.store.errors import DuplicateError, InvalidStateError, KomasError, MissingDependencyError, NotFoundError
from worker.store.managers.dead_letters import DeadLetterManager

log = logging.getLogger("komas.worker")
T = TypeVar("T")


@dataclass
class BatchReport:
    """What became of every event of a job; the job's (JSON) result."""

    applied: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    parked: list[str] = field(default_factory=list)
    dead_lettered: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    #: Answers of command handlers by event id (e.g. the id of a created preset).
    results: dict[str, Any] = field(default_factory=dict)
    #: How many events of each (type, outcome): the worker's metrics.
    tally: Counter[tuple[str, str]] = field(default_factory=Counter)

    def as_result(self) -> dict[str, Any]:
        return {
            "applied": len(self.applied),
            "duplicates": len(self.duplicates),
            "parked": len(self.parked),
            "dead_lettered": len(self.dead_lettered),
            "rejected": len(self.rejected),
            "applied_ids": self.applied,
            "duplicate_ids": self.duplicates,
            "parked_ids": self.parked,
            "dead_letters": self.dead_lettered,
            "rejections": self.rejected,
            "results": self.results,
        }


def storable(text: str, limit: int) -> str:
    """`text` cut to `limit` characters and made storable: lone surrogates (valid JSON, invalid UTF-8) replaced."""
    text = text[:limit]
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")


async def dead_letter(report: BatchReport, raw: Any, reason: str, event_type: str | None = None) -> None:
    """Store one raw event with its reason and note it in the report."""
    event_id = event_id_of(raw)
    if event_type is None and isinstance(raw, dict) and isinstance(raw.get("type"), str):
        event_type = raw["type"]
    event_type = storable(event_type, 50) if event_type is not None else None
    reason = storable(reason, 2000)
    await DeadLetterManager.record(raw, reason, event_id=event_id, event_type=event_type)
    log.error("event %s dead-lettered: %s", event_id, reason, extra={"event_id": event_id})
    report.dead_lettered.append({"event_id": event_id, "reason": reason})
    report.tally[(event_type or "", "dead_lettered")] += 1


async def validate(raw_events: Sequence[Any], report: BatchReport, config: Config) -> list[BaseEvent]:
    """Parse each payload; oversized and invalid ones are dead-lettered, the others go on."""
    sized: list[Any] = []
    for raw in raw_events:
        try:
            size = encoded_size(raw)
        except (TypeError, ValueError) as exc:
            await dead_letter(report, raw, f"not JSON-encodable: {exc}")
            continue
        if size > config.max_event_bytes:
            await dead_letter(report, raw, f"event of {size} bytes exceeds the limit of {config.max_event_bytes}")
            continue
        sized.append(raw)
    valid: list[BaseEvent] = []
    for raw, parsed in zip(sized, _parse_each(sized), strict=True):
        if isinstance(parsed, BaseEvent):
            valid.append(parsed)
        else:
            await dead_letter(report, raw, parsed)
    return valid


def _parse_each(payloads: list[Any]) -> list[BaseEvent | str]:
    """Each payload as its event or the reason it was refused; an error of any kind refuses one payload only."""
    try:
        results: list[Any] = list(parse_events(payloads))
    except Exception:  # a fault of the validation itself: find the payload it came from
        log.exception("validating a batch raised; validating its events one by one")
        results = [_parse_one(payload) for payload in payloads]
    return [result if isinstance(result, BaseEvent) else str(result) for result in results]


def _parse_one(payload: Any) -> BaseEvent | str:
    try:
        return parse_event(payload)
    except EventValidationError as exc:
        return str(exc)
    except Exception as exc:
        return f"validation failed: {describe(exc)}"


def _on_connection(sync_session: Session, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a synchronous bulk step on the session's connection (through `AsyncSession.run_sync`)."""
    return function(sync_session.connection(), *args, **kwargs)


async def apply_in_transaction(events: list[BaseEvent]) -> tuple[list[bool], dict[str, Any]]:
    """In one transaction: skip ids applied or parked already, apply the rest, record their ids.

    Returns, for each event in order, whether it was applied (False: a duplicate), and the
    answers of command handlers by event id. A batch of trading events only, on SQLite, is
    applied by the writer thread in one hand-off; anything else through the async session.
    """
    database = get_database()
    await database.ensure_schema()
    parked_too = database.parked_hint is not False
    writer = database.sqlite_writer()
    if writer is not None and current_session() is None and all(map(is_set_based, events)):
        flags = await writer.run(lambda connection: apply_trading(connection, events, parked_too=parked_too))
        failpoint("after_commit")
        return flags, {}
    results: dict[str, Any] = {}
    async with transaction() as session:
        fresh = await session.run_sync(_on_connection, split_fresh, events, parked_too=parked_too)
        for run in runs(fresh.events):
            bulk = set_based(type(run[0]))
            if bulk is not None:
                await session.run_sync(_on_connection, bulk, run)
                session.expire_all()  # set-based statements bypass the identity map
                continue
            for event in run:
                result = await handle(session, event)
                if result is not None:
                    results[str(event.event_id)] = result
        if fresh.events:
            await session.run_sync(_on_connection, record_processed, fresh.events, fresh.ids)
        failpoint("before_commit")
    failpoint("after_commit")
    return fresh.flags, results


async def apply_all(events: list[BaseEvent], report: BatchReport, committer: GroupCommitter | None = None) -> None:
    """Apply a batch in one transaction (all or nothing) and note each event's outcome in `report`.

    With a `committer`, that transaction is shared with the other jobs waiting at the same time; if
    the shared one fails, the batch is applied again in a transaction of its own.
    """
    if committer is None:
        applied_flags, results = await apply_in_transaction(events)
    else:
        try:
            applied_flags, results = await committer.apply(events)
        except RunAlone:
            applied_flags, results = await apply_in_transaction(events)
    for event, applied in zip(events, applied_flags, strict=True):
        (report.applied if applied else report.duplicates).append(str(event.event_id))
        report.tally[(event.type, "applied" if applied else "duplicate")] += 1
    report.results.update(results)


#: How a refused command is answered (HTTP-like codes the API passes on).
REJECTION_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (NotFoundError, 404),
    (DuplicateError, 409),
    (InvalidStateError, 409),
    (IntegrityError, 409),
    (ValueError, 422),
)


async def reject(event: BaseEvent, exc: BaseException, report: BatchReport) -> None:
    """Record a refused command as processed (a redelivery stays a no-op) and answer with the refusal."""
    status = next((code for kind, code in REJECTION_STATUS if isinstance(exc, kind)), 422)
    async with transaction() as session:
        await session.run_sync(lambda sync: record_processed(sync.connection(), [event], [str(event.event_id)]))
    rejection = {"event_id": str(event.event_id), "type": event.type, "status": status, "reason": describe(exc)}
    log.info("command %s (%s) refused: %s", event.event_id, event.type, rejection["reason"])
    report.rejected.append(rejection)
    report.tally[(event.type, "rejected")] += 1


async def apply_isolating(
    events: list[BaseEvent], report: BatchReport, committer: GroupCommitter | None = None
) -> None:
    """Apply events; when the batch fails on an event's content, bisect until the culprit is alone.

    Only the first, whole-batch attempt goes through the group `committer`; the halves run alone.
    """
    if not events:
        return
    try:
        await apply_all(events, report, committer)
        return
    except Exception as exc:
        if not is_event_fault(exc):
            raise
        if len(events) == 1:
            event = events[0]
            if isinstance(event, Command) and isinstance(exc, KomasError | ValueError | IntegrityError):
                await reject(event, exc, report)
            elif isinstance(exc, MissingDependencyError):
                await park(event, str(exc))
                report.parked.append(str(event.event_id))
                report.tally[(event.type, "parked")] += 1
            else:
                await dead_letter(report, _as_payload(event), describe(exc), event.type)
            return
    middle = len(events) // 2
    await apply_isolating(events[:middle], report)
    await apply_isolating(events[middle:], report)


def _as_payload(event: BaseEvent) -> Any:
    """The event as it travels, to store with its dead letter (its fields as text if even that fails)."""
    try:
        return event.to_wire()
    except Exception:
        return {"event_id": str(event.event_id), "type": event.type, "unserializable": repr(event)[:10_000]}


async def process_batch(
    raw_events: Sequence[Any], config: Config, committer: GroupCommitter | None = None
) -> BatchReport:
    """Everything one batch needs, except the handling of the machinery's failures."""
    report = BatchReport()
    await apply_isolating(await validate(raw_events, report, config), report, committer)
    # This batch may have brought a parked event's dependency, or parked events whose dependency a
    # concurrent job just committed: ask for a background pass (`retry_parked_job`), never retry here.
    if report.applied or report.parked:
        request_pass()
    return report


async def requeue(ctx: dict[str, Any], raw_events: list[Any], *, delay_s: float) -> None:
    """Put events back on the queue as a new job (a fresh arq try count), in the documented wire shape."""
    config: Config = ctx["config"]
    await ctx["redis"].enqueue_job(
        JOB_FUNCTION, raw_events, _queue_name=config.queue, _defer_by=delay_s, _expires=config.job_ttl_s
    )


class Outage:
    """How long the database has been unavailable, for the back-off of re-enqueued jobs.

    Kept by the worker (in the jobs' shared context), never read from a job: nothing a producer
    writes can change it. Every job failing during one outage waits longer the longer it lasts;
    the first commit that succeeds ends it.
    """

    #: (seconds since the outage began, delay before a re-enqueued job runs again)
    STEPS: tuple[tuple[float, float], ...] = ((2, 1), (5, 2), (15, 5), (40, 10), (120, 30))
    LONGEST_DELAY_S = 60.0

    def __init__(self) -> None:
        self.since: float | None = None

    def delay_s(self) -> float:
        """The back-off for a job failing now (the outage begins with the first)."""
        now = time.monotonic()
        if self.since is None:
            self.since = now
        lasted = now - self.since
        return next((delay for bound, delay in self.STEPS if lasted < bound), self.LONGEST_DELAY_S)

    def over(self) -> None:
        self.since = None


def _outage(ctx: dict[str, Any]) -> Outage:
    outage = ctx.get("outage")
    if not isinstance(outage, Outage):
        outage = ctx["outage"] = Outage()
    return outage


async def _after_crashes(ctx: dict[str, Any], raw_events: list[Any], report: BatchReport) -> None:
    """The worker died on this job `max_crashes` times: split it, or dead-letter a lone event."""
    job_try = int(ctx.get("job_try", 1))
    if len(raw_events) == 1:
        # The crash may have come after the commit (or the parking): such an event is settled, not poison.
        event_id = event_id_of(raw_events[0])
        if event_id is not None and await _settled_ids([event_id], parked_too=True):
            report.duplicates.append(event_id)
            raw = raw_events[0]
            report.tally[(str(raw.get("type", "")) if isinstance(raw, dict) else "", "duplicate")] += 1
            return
        await dead_letter(report, raw_events[0], f"the worker crashed {job_try - 1} times while applying this event")
        return
    middle = len(raw_events) // 2
    log.warning("job %s crashed the worker %d times: split in two", ctx.get("job_id"), job_try - 1)
    await requeue(ctx, raw_events[:middle], delay_s=0)
    await requeue(ctx, raw_events[middle:], delay_s=0)


async def apply_events(ctx: dict[str, Any], raw_events: list[Any]) -> dict[str, Any]:
    """The job: one batch of raw events, exactly as the producer sent it (see `worker.runtime.poison` for the shape)."""
    started = time.monotonic()
    result, report = await _apply_events(ctx, raw_events)
    metrics.count_events(report.tally)
    metrics.observe_job(len(raw_events), started, _enqueued_ms(ctx), "requeued" if "requeued" in result else "done")
    SUMMARY.add(report.tally)
    return result


@dataclass
class WorkSummary:
    """The INFO line of applied work: at most one every `every_s` seconds under load, none while idle."""

    every_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    jobs: int = 0
    tally: Counter[str] = field(default_factory=Counter)
    since: float = 0.0

    def add(self, tally: Counter[tuple[str, str]]) -> None:
        if not self.jobs:
            self.since = self.clock()
        self.jobs += 1
        for (_type, outcome), n in tally.items():
            self.tally[outcome] += n
        if self.clock() - self.since >= self.every_s:
            self.flush()

    def flush(self) -> None:
        """Log what was counted since the last line (nothing when nothing was)."""
        if not self.jobs:
            return
        seconds = max(self.clock() - self.since, 1e-3)
        counted = self.tally
        log.info(
            "%d jobs in %.1fs: %d events applied (%.0f/s), %d duplicate, %d parked, %d dead-lettered, %d rejected",
            self.jobs,
            seconds,
            counted["applied"],
            counted["applied"] / seconds,
            counted["duplicate"],
            counted["parked"],
            counted["dead_lettered"],
            counted["rejected"],
        )
        self.jobs, self.tally = 0, Counter()


#: The worker's summary of applied work (one per process; flushed at shutdown).
SUMMARY = WorkSummary()


def _enqueued_ms(ctx: dict[str, Any]) -> int | None:
    enqueued = ctx.get("enqueue_time")
    return int(enqueued.timestamp() * 1000) if enqueued is not None else None


async def _apply_events(ctx: dict[str, Any], raw_events: list[Any]) -> tuple[dict[str, Any], BatchReport]:
    """`apply_events`: the job's result, and the report it was made from (counted by the metrics)."""
    config: Config = ctx.get("config") or get_config()
    batch = raw_events
    report = BatchReport()
    async with job_lock_heartbeat(ctx, config.lock_ttl_s):
        try:
            if len(batch) > config.max_batch:  # one dead letter for the whole batch: one row, not a million
                reason = f"a batch of {len(batch)} events, over the limit of {config.max_batch} (KOMAS_MAX_BATCH)"
                await dead_letter(report, batch, f"job {ctx.get('job_id')}: {reason}")
                return report.as_result(), report
            if int(ctx.get("job_try", 1)) > config.max_crashes:
                await _after_crashes(ctx, batch, report)
                return report.as_result() | {"split": len(batch) > 1}, report
            committer: GroupCommitter | None = ctx.get("committer")
            with committer.expecting() if committer is not None else contextlib.nullcontext():
                report = await process_batch(batch, config, committer)
            _outage(ctx).over()
        except Exception as exc:
            recovery = BatchReport()
            return await _recover(ctx, batch, exc, recovery), recovery
    log.debug(
        "job %s, batch of %d: %d applied, %d duplicate, %d parked, %d dead-lettered, %d rejected",
        ctx.get("job_id"),
        len(batch),
        len(report.applied),
        len(report.duplicates),
        len(report.parked),
        len(report.dead_lettered),
        len(report.rejected),
        extra={"job_id": ctx.get("job_id")},
    )
    return report.as_result(), report


async def _recover(ctx: dict[str, Any], batch: list[Any], exc: Exception, report: BatchReport) -> dict[str, Any]:
    """Never let an exception reach arq (it would drop the job): re-enqueue or dead-letter (into `report`)."""
    try:
        if is_transient(exc):
            delay = _outage(ctx).delay_s()
            log.warning("database unavailable (%s): %d events re-enqueued in %ss", describe(exc), len(batch), delay)
            await requeue(ctx, batch, delay_s=delay)
            return {"requeued": len(batch), "reason": describe(exc)}
        log.exception("unexpected error applying a batch; its unapplied events are dead-lettered")
        reason = "unexpected error: " + "".join(traceback.format_exception_only(exc)).strip()
        applied = await _settled_ids([event_id_of(raw) for raw in batch], parked_too=False)
        for raw in batch:
            if event_id_of(raw) not in applied:
                await dead_letter(report, raw, reason)
        return report.as_result()
    except Exception as second:
        # Neither Redis nor the database takes the events now: let arq run the job again later.
        log.warning("could not re-enqueue or dead-letter (%s); job retried by arq", describe(second))
        raise Retry(defer=Outage.LONGEST_DELAY_S) from second


async def _settled_ids(event_ids: list[str | None], *, parked_too: bool) -> set[str]:
    """Which of these events are applied already (or parked, with `parked_too`), read in a transaction of its own."""
    wanted = [event_id for event_id in event_ids if event_id]
    async with transaction() as session:
        return await session.run_sync(_on_connection, known_ids, wanted, parked_too=parked_too)


async def dead_letter_job(ctx: dict[str, Any], poison: PoisonJob) -> dict[str, Any]:
    """Target of every job body that is not the documented shape (`runtime.poison`): one dead letter, raw bytes kept.

    Only the worker's deserializer makes a `PoisonJob`. When it cannot be stored now (the database
    is unavailable), the job runs again later: arq would otherwise forget it.
    """
    report = BatchReport()
    try:
        await dead_letter(report, poison.raw, f"job {ctx.get('job_id')}: {poison.reason}")
    except Exception as exc:
        log.warning("could not dead-letter job %s (%s); retried later", ctx.get("job_id"), describe(exc))
        raise Retry(defer=Outage.LONGEST_DELAY_S) from exc
    return report.as_result()


async def retry_parked_job(ctx: dict[str, Any]) -> dict[str, int]:
    """Cron (every 5 s): the background passes over parked events (see `worker.apply.parking`).

    One at a time across the workers of a queue (a Redis lock); while parked events remain the job
    stays a few seconds to run each pass a batch asks for at once (one pass only in a burst worker,
    which must find its queue empty to stop). Its job lock is renewed like any job's.
    """
    config: Config = ctx.get("config") or get_config()
    outcome: dict[str, int] = {}
    async with (
        job_lock_heartbeat(ctx, config.lock_ttl_s),
        redis_lock(ctx.get("redis"), f"{config.queue}:parked-retry", config.lock_ttl_s) as held,
    ):
        if held:
            async with contextlib.aclosing(pass_window(0 if ctx.get("burst") else None)) as window:
                async for _ in window:
                    for key, value in (await retry_parked(config.park_timeout_s)).items():
                        outcome[key] = outcome.get(key, 0) + value
    return outcome
