"""`komas bench ops`: a backup and a purge of a million-event database while the worker applies events.

One scratch database, one real worker subprocess (`WorkerProcess`), one run, each figure beside a
baseline measured in the same run:

1. *backup*: an idle backup first (its duration without load), then the bulk workload undisturbed
   (the baseline rate), then bulk again with `maintenance backup` enqueued as it starts. The
   publisher keeps a backlog queued until the backup has answered, so the worker is never idle
   while it runs; the rate during the backup is the events committed between the job's start and
   end (arq's record of it) over that time.
2. *purge*: the latency workload (single signal creates at a fixed rate) without, then during a
   `maintenance purge` of the filled rows, which are older than the dedup window the worker is
   given; the latency during it is that of the events published between the job's start and end.

The million events are filled with set-based SQL before the worker starts (processed_events and
the rows they made: half backtest results, half signals, in runs of 1,000 as the bulk workload
publishes them): publishing them would take a minute and measure nothing the other workloads do not.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import math
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from events import Publisher
from events.catalogue import BaseEvent
from worker.bench import workloads
from worker.bench.harness import (
    PUBLISH_CHUNK,
    BenchError,
    BenchOptions,
    Producer,
    Progress,
    Scratch,
    WorkerProcess,
    _cleanup_redis,
    _wait_applied,
    database_counts,
    seed_database,
)
from worker.bench.observe import CommitWatcher, percentiles_ms
from worker.bench.workloads import Seeded
from worker.config import Config
from worker.ops.maintenance import file_bytes
from worker.runtime.client import arq_pool, job_result
from worker.runtime.maintenance_jobs import MAINTENANCE_JOB

#: Makes a progress callback for one step, given its label and total.
ProgressFactory = Callable[[str, int], Progress]

LATENCY_EVENTS = 2_500  #: events of the latency baseline (at most --events)
BACKLOG = 30_000  #: events queued ahead of the worker while a bulk phase publishes
#: The purge's worker: a dedup window longer than job TTL + park timeout (the worker refuses less),
#: short enough that the filled rows (a day old) are all beyond it and the run's own rows are not.
WORKER_SETTINGS = {
    "KOMAS_JOB_TTL_S": "120",
    "KOMAS_PARK_TIMEOUT_S": "60",
    "KOMAS_DEDUP_WINDOW_S": "600",
    # Only the operation under test runs: no scheduled backup, checkpoint, optimize or purge.
    "KOMAS_CRON_BACKUP_HOURS": "0",
    "KOMAS_CRON_CHECKPOINT_MINUTES": "0",
    "KOMAS_CRON_CHECKPOINT_WAL_BYTES": "0",
    "KOMAS_CRON_OPTIMIZE_HOURS": "0",
    "KOMAS_CRON_PURGE_HOURS": "0",
}
FILL_AGE_S = 86_400  #: the newest filled row was applied this long before the run
#: The bulk events built for the backup phase: the idle backup's duration x the baseline rate x this
#: (it may last longer under load), at least --events and at most MAX_POOL_FACTOR x --events.
POOL_MARGIN = 3.0
MAX_POOL_FACTOR = 4
OPERATION_TIMEOUT_S = 3600.0
GOAL_BACKUP_SHARE_PCT = 50.0
GOAL_PURGE_P99_MS = 50.0
DESCRIPTION = (
    "maintenance under load on a database of a million events: backup during bulk, purge during the latency workload"
)


# --- the database ------------------------------------------------------------------------------

_FILL_EVENTS = """
WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < :rows)
INSERT INTO processed_events (event_id, event_type, applied_at)
SELECT printf('%08x-%04x-4%03x-8%03x-%012x', (n * 2654435761) % 4294967296, (n * 40503) % 65536,
              (n * 2731) % 4096, (n / 7) % 4096, n),
       CASE WHEN (n / :chunk) % 2 = 0 THEN 'backtest.finished' ELSE 'signal.created' END,
       strftime('%Y-%m-%d %H:%M:%f', :base, printf('+%.3f seconds', n / 1000.0)) || '000'
FROM seq
"""
_FILL_BACKTESTS = """
INSERT INTO backtest_results (preset_id, event_id, symbol, timeframe, win_rate, profit_factor,
  total_profit_percent, max_drawdown_percent, sharpe_ratio, total_trades, params, created_at)
SELECT json_extract(:presets, printf('$[%d]', abs(random()) % json_array_length(:presets))), event_id,
       json_extract(:symbols, printf('$[%d]', abs(random()) % json_array_length(:symbols))),
       json_extract(:timeframes, printf('$[%d]', abs(random()) % json_array_length(:timeframes))),
       20 + (abs(random()) % 6000) / 100.0, 0.5 + (abs(random()) % 2500) / 1000.0,
       -30 + (abs(random()) % 12000) / 100.0, 1 + (abs(random()) % 3900) / 100.0,
       -1 + (abs(random()) % 4000) / 1000.0, 10 + abs(random()) % 1990,
       json_object('period', 5 + abs(random()) % 45, 'mult', 1 + (abs(random()) % 300) / 100.0), applied_at
FROM processed_events WHERE event_type = 'backtest.finished' ORDER BY rowid
"""
_FILL_SIGNALS = """
INSERT INTO signals (uid, bot_id, symbol, timeframe, direction, status, entry_price, stop_loss,
  take_profits, indicator_values, created_at)
SELECT 'fill-' || rowid, json_extract(:bots, printf('$[%d]', rowid % json_array_length(:bots))),
       json_extract(:symbols, printf('$[%d]', abs(random()) % json_array_length(:symbols))),
       json_extract(:timeframes, printf('$[%d]', abs(random()) % json_array_length(:timeframes))),
       CASE abs(random()) % 2 WHEN 0 THEN 'long' ELSE 'short' END, 'active', price, round(price * 0.97, 4),
       json_array(json_object('percent', 1.5, 'amount', 50.0, 'price', round(price * 1.015, 4))),
       json_object('rsi', (abs(random()) % 10000) / 100.0, 'atr', (abs(random()) % 5000) / 1000.0), applied_at
FROM (SELECT rowid, applied_at, 10 + (abs(random()) % 59990000) / 1000.0 AS price
      FROM processed_events WHERE event_type = 'signal.created' ORDER BY rowid)
"""


def fill_database(path: Path, rows: int, seeded: Seeded) -> dict[str, Any]:
    """`rows` applied events, set-based: their ids in processed_events (a day old and more) and their effects.

    Runs of `PUBLISH_CHUNK` backtest results and signal creates by turns, as the bulk workload
    publishes them; ids are spread like UUIDs (the primary key's index grows as it does in use).
    """
    started = time.perf_counter()
    base = datetime.now(UTC) - timedelta(seconds=FILL_AGE_S + rows / 1000)
    lists = {
        "bots": json.dumps(list(seeded.bot_ids)),
        "presets": json.dumps(list(seeded.preset_ids)),
        "symbols": json.dumps(list(workloads.SYMBOLS)),
        "timeframes": json.dumps(list(workloads.TIMEFRAMES)),
    }
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute("PRAGMA cache_size=-400000")  # 400 MB for this connection: the random-key index
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            _FILL_EVENTS, {"rows": rows, "chunk": PUBLISH_CHUNK, "base": base.strftime("%Y-%m-%d %H:%M:%S")}
        )
        connection.execute(_FILL_BACKTESTS, {key: lists[key] for key in ("presets", "symbols", "timeframes")})
        connection.execute(_FILL_SIGNALS, {key: lists[key] for key in ("bots", "symbols", "timeframes")})
        connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (top,) = connection.execute("SELECT coalesce(max(rowid), 0) FROM processed_events").fetchone()
    return {"rows": rows, "seconds": round(time.perf_counter() - started, 1), "max_rowid": int(top)}


def _max_rowid(path: Path) -> int:
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
        return int(connection.execute("SELECT coalesce(max(rowid), 0) FROM processed_events").fetchone()[0])


# --- watching, publishing, operations ----------------------------------------------------------


class TimelineWatcher(CommitWatcher):
    """Counts commits (rowid > the filled rows) and notes when the count changed, in wall-clock seconds."""

    def __init__(self, db_path: Path, *, start_rowid: int, interval_s: float) -> None:
        super().__init__(db_path, interval_s=interval_s, track_ids=False, start_rowid=start_rowid)
        self.times: list[float] = [time.time()]
        self.counts: list[int] = [0]

    def poll(self, connection: sqlite3.Connection) -> None:
        before = self.count
        super().poll(connection)
        if self.count != before:
            self.times.append(time.time())
            self.counts.append(self.count)

    def count_at(self, at: float) -> int:
        """Events seen committed at wall-clock time `at` (the last poll at or before it)."""
        index = bisect.bisect_right(self.times, at) - 1
        return self.counts[max(index, 0)]


def _checker(watcher: CommitWatcher, worker: WorkerProcess, options: BenchOptions) -> Callable[[bool], None]:
    """A check to call while waiting: the worker is alive, the watcher well, and (`busy`) events still apply."""

    def check(busy: bool) -> None:
        if watcher.error is not None:
            raise BenchError(f"the commit watcher failed: {watcher.error}")
        if not worker.alive():
            raise BenchError(f"the worker exited early:\n{worker.log_tail()}")
        if busy and time.perf_counter() - watcher.last_change_at > options.stall_timeout_s:
            raise BenchError(f"no event applied for {options.stall_timeout_s:.0f}s; worker log:\n{worker.log_tail()}")

    return check


async def _publish_bulk(
    producer: Producer,
    chunks: Iterable[list[BaseEvent]],
    committed: Callable[[], int],
    check: Callable[[bool], None],
    *,
    minimum: int,
    keep_going: Callable[[], bool],
) -> int:
    """Publish chunks, at most `BACKLOG` events ahead of the worker, until `minimum` are out and not `keep_going`."""
    sent = 0
    for chunk in chunks:
        if sent >= minimum and not keep_going():
            break
        while sent - committed() > BACKLOG:  # the count comes from the watcher thread
            check(True)
            await asyncio.sleep(0.005)
        await producer.many(chunk)
        sent += len(chunk)
    return sent


async def _publish_paced(
    producer: Producer, events: Iterator[BaseEvent], rate: float, *, count: int | None, keep_going: Callable[[], bool]
) -> int:
    """Open loop at `rate` events/s: `count` events, or (None) as long as `keep_going`."""
    start = time.perf_counter()
    sends: list[asyncio.Task[None]] = []
    for index, event in enumerate(events):
        if (count is not None and index >= count) or (count is None and not keep_going()):
            break
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sends.append(asyncio.create_task(producer.single(event)))
    await asyncio.gather(*sends)
    return len(sends)


class Operation:
    """One `maintenance` job enqueued on the scratch queue; its report and when it ran (arq's record)."""

    def __init__(self, pool: Any, queue: str, name: str, options: dict[str, Any]) -> None:
        self.pool, self.queue, self.name, self.options = pool, queue, name, options
        self.job_id = ""
        self.report: dict[str, Any] = {}
        self.started_at = self.finished_at = 0.0  # wall clock, seconds
        self._task: asyncio.Future[None] | None = None

    async def start(self) -> None:
        job = await self.pool.enqueue_job(
            MAINTENANCE_JOB, self.name, self.options, _queue_name=self.queue, _expires=OPERATION_TIMEOUT_S
        )
        assert job is not None  # a fresh random job id never collides
        self.job_id = job.job_id
        enqueued = time.time()

        async def wait() -> None:
            self.report = await job_result(self.pool, self.queue, job.job_id, OPERATION_TIMEOUT_S)
            answered = time.time()
            info = await job.result_info()
            start = getattr(info, "start_time", None)
            finish = getattr(info, "finish_time", None)
            self.started_at = start.timestamp() if start is not None else enqueued
            self.finished_at = finish.timestamp() if finish is not None else answered

        self._task = asyncio.ensure_future(wait())

    def done(self) -> bool:
        return self._task is not None and self._task.done()

    async def wait(self, check: Callable[[bool], None]) -> dict[str, Any]:
        assert self._task is not None
        while not self._task.done():
            check(False)
            await asyncio.wait({self._task}, timeout=0.1)
        self._task.result()
        return self.report

    @property
    def seconds(self) -> float:
        return round(self.finished_at - self.started_at, 3)


def _rate(events: int, seconds: float) -> float | None:
    return round(events / seconds, 1) if seconds > 0 else None


def _backup_figures(operation: Operation) -> dict[str, Any]:
    report = operation.report
    return {
        "ok": bool(report.get("ok")),
        "check": report.get("check", report.get("error")),
        "check_kind": report.get("check_kind"),
        "seconds": operation.seconds,
        "backup_seconds": report.get("seconds"),
        "bytes": report.get("bytes"),
    }


# --- the run -----------------------------------------------------------------------------------


@dataclass
class _Run:
    """What both parts share: the scratch database, its seed, the worker, the publisher and the queue pool."""

    scratch: Scratch
    seeded: Seeded
    rows: int
    events: int
    options: BenchOptions
    progress: ProgressFactory
    worker: WorkerProcess
    publisher: Publisher
    client: aioredis.Redis
    pool: Any
    producers: list[Producer] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)

    def producer(self, *, track: bool) -> Producer:
        made = Producer("ours", self.publisher, self.client, self.scratch.queue, track=track)
        self.producers.append(made)
        return made

    def operation(self, name: str) -> Operation:
        made = Operation(self.pool, self.scratch.queue, name, {})
        self.operations.append(made)
        return made

    async def applied(self, watcher: CommitWatcher, base: int, total: int, label: str) -> float:
        """Wait until `total` more events than `base` are committed; the perf_counter of the last one."""
        step = self.progress(label, total)
        return await _wait_applied(
            watcher, self.worker, base + total, self.options, lambda done, _all: step(done - base, total)
        )


async def run_ops(
    rows: int, events: int, options: BenchOptions, progress: ProgressFactory, *, description: str = DESCRIPTION
) -> dict[str, Any]:
    """Fill, start the worker, then the backup part and the purge part; the figures and the targets."""
    result: dict[str, Any] = {"workload": "ops", "description": description}
    with tempfile.TemporaryDirectory(prefix="komas-bench-") as tmp:
        scratch = Scratch(Path(tmp), f"komas:bench:{uuid.uuid4().hex[:12]}")
        seeded = await seed_database(scratch.url)
        step = progress("ops · fill (SQL)", rows)
        fill = await asyncio.to_thread(fill_database, scratch.db_path, rows, seeded)
        step(rows, rows)
        result["database"] = {
            "rows": rows,
            "filled": "set-based SQL, not published: processed_events and their backtest results and signals",
            "fill_s": fill["seconds"],
        }
        env = scratch.worker_env(options.redis_url) | WORKER_SETTINGS
        env["KOMAS_BACKUP_DIR"] = str(scratch.directory / "backups")
        worker = WorkerProcess("ours", scratch.directory, env, overrides=options.worker_overrides)
        client = aioredis.Redis.from_url(options.redis_url)
        run: _Run | None = None
        watchers: list[CommitWatcher] = []
        try:
            worker.start()
            ready = await worker.wait_ready()
            config = Config(redis_url=options.redis_url, queue=scratch.queue)
            async with (
                Publisher.connect(options.redis_url, queue=scratch.queue) as publisher,
                arq_pool(config) as pool,
            ):
                run = _Run(scratch, seeded, rows, events, options, progress, worker, publisher, client, pool)
                counter = TimelineWatcher(
                    scratch.db_path, start_rowid=fill["max_rowid"], interval_s=options.poll_interval_s
                )
                watchers.append(counter)
                counter.start()
                result["backup"] = await _backup_part(run, counter, result["database"])
                counter.stop()
                tracker = CommitWatcher(
                    scratch.db_path, interval_s=options.poll_interval_s, start_rowid=_max_rowid(scratch.db_path)
                )
                watchers.append(tracker)
                tracker.start()
                result["purge"] = await _purge_part(run, tracker)
                tracker.stop()
            exit_report = await worker.stop()
        finally:
            for watcher in watchers:
                watcher.stop()
            worker.kill()
            job_ids: set[str] = set()
            if run is not None:
                job_ids = {job for made in run.producers for job in made.published.job_ids}
                job_ids |= {made.job_id for made in run.operations if made.job_id}
            with contextlib.suppress(Exception):
                await _cleanup_redis(client, scratch.queue, job_ids)
            await client.aclose()
        result["database"]["counts"] = database_counts(scratch.db_path)
        result["database"]["bytes_at_end"] = file_bytes(scratch.db_path)
    result["worker"] = {
        "settings": dict(WORKER_SETTINGS),
        "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(ready.get("synchronous") or -1),
        "jobs_failed": exit_report["jobs_failed"],
        "peak_rss_mb": round(exit_report["peak_kb"] / 1024, 1),
    }
    result["targets"] = targets(result, options)
    return result


async def _backup_part(run: _Run, watcher: TimelineWatcher, database: dict[str, Any]) -> dict[str, Any]:
    events, options, check = run.events, run.options, _checker(watcher, run.worker, run.options)

    # The backup without load: its duration is the baseline, and sizes the load of the backup phase.
    step = run.progress("ops · backup, idle", 1)
    database["bytes"] = file_bytes(run.scratch.db_path)
    idle = run.operation("backup")
    await idle.start()
    await idle.wait(check)
    step(1, 1)

    # Bulk undisturbed: the baseline rate.
    chunks = workloads.bulk(events, run.seeded, seed=options.seed, chunk=PUBLISH_CHUNK, prefix="ops-a")
    base = watcher.count
    watcher.last_change_at = time.perf_counter()
    first = run.producer(track=False)
    publishing = asyncio.ensure_future(
        _publish_bulk(first, chunks, lambda: watcher.count - base, check, minimum=events, keep_going=lambda: False)
    )
    last = await run.applied(watcher, base, events, "ops · bulk, undisturbed")
    await publishing
    del chunks
    assert first.published.first_at is not None
    baseline_s = last - first.published.first_at
    baseline_rate = _rate(events, baseline_s)

    # Bulk again with the backup enqueued as it starts, the backlog kept up until the backup answers.
    pool_size = events
    if baseline_rate:
        wanted = math.ceil(baseline_rate * idle.seconds * POOL_MARGIN / PUBLISH_CHUNK) * PUBLISH_CHUNK
        pool_size = min(max(events, wanted), MAX_POOL_FACTOR * events)
    step = run.progress("ops · build events", pool_size)
    chunks = await asyncio.to_thread(
        workloads.bulk, pool_size, run.seeded, seed=options.seed + 1, chunk=PUBLISH_CHUNK, prefix="ops-b"
    )
    step(pool_size, pool_size)
    base = watcher.count
    watcher.last_change_at = time.perf_counter()
    second = run.producer(track=False)
    backup = run.operation("backup")
    await backup.start()
    sent = await _publish_bulk(
        second, chunks, lambda: watcher.count - base, check, minimum=events, keep_going=lambda: not backup.done()
    )
    del chunks
    await backup.wait(check)
    await run.applied(watcher, base, sent, "ops · bulk + backup")
    last_commit = watcher.times[-1]
    window_end = min(backup.finished_at, last_commit)
    window_s = max(window_end - backup.started_at, 0.0)
    in_window = watcher.count_at(window_end) - watcher.count_at(backup.started_at)
    during_rate = _rate(in_window, window_s)
    return {
        "idle": _backup_figures(idle),
        "under_load": _backup_figures(backup),
        "report": {key: value for key, value in backup.report.items() if key not in ("file", "removed")},
        "baseline": {"events": events, "elapsed_s": round(baseline_s, 3), "events_per_s": baseline_rate},
        "during": {
            "events_published": sent,
            "events_built": pool_size,
            "events_in_window": in_window,
            "window_s": round(window_s, 3),
            "load_covered_backup": last_commit >= backup.finished_at,
            "events_per_s": during_rate,
        },
        "share_pct": round(100 * during_rate / baseline_rate, 1) if during_rate and baseline_rate else None,
    }


async def _purge_part(run: _Run, tracker: CommitWatcher) -> dict[str, Any]:
    options, rate, check = run.options, run.options.rate, _checker(tracker, run.worker, run.options)

    def latencies(made: Producer, since: float = -math.inf, until: float = math.inf) -> list[float]:
        return [
            tracker.seen_at[event_id] - at
            for event_id, at in made.published.started_at.items()
            if since <= at <= until and event_id in tracker.seen_at
        ]

    # The latency workload without an operation.
    count = min(LATENCY_EVENTS, run.events)
    stream = workloads.paced_stream(run.seeded, seed=options.seed + 2, prefix="ops-lat-a")
    first = run.producer(track=True)
    base = tracker.count
    tracker.last_change_at = time.perf_counter()
    await _publish_paced(first, stream, rate, count=count, keep_going=lambda: True)
    await run.applied(tracker, base, count, "ops · latency")
    without = latencies(first)

    # The same during the purge, for as long as it runs.
    stream = workloads.paced_stream(run.seeded, seed=options.seed + 3, prefix="ops-lat-b")
    second = run.producer(track=True)
    base = tracker.count
    tracker.last_change_at = time.perf_counter()
    purge = run.operation("purge")
    await purge.start()
    sent = await _publish_paced(second, stream, rate, count=None, keep_going=lambda: not purge.done())
    await purge.wait(check)
    await run.applied(tracker, base, sent, "ops · latency + purge")
    offset = time.time() - time.perf_counter()  # the job's wall-clock times on the publisher's clock
    during = latencies(second, purge.started_at - offset, purge.finished_at - offset)
    report = purge.report
    deleted = (report.get("processed_events") or {}).get("rows")
    return {
        "rate": rate,
        "ok": bool(report.get("ok")),
        "rows_deleted": deleted,
        "rows_purgeable": run.rows,
        "seconds": purge.seconds,
        "report": report,
        "baseline": {"events": count, "latency_ms": percentiles_ms(without)},
        "during": {"events_published": sent, "events_in_window": len(during), "latency_ms": percentiles_ms(during)},
    }


def _target(name: str, value: float | None, goal: float, *, below: bool = False, unit: str = "") -> dict[str, Any]:
    met = value is not None and (value < goal if below else value >= goal)
    return {
        "target": name,
        "value": value,
        "goal": goal,
        "comparison": "<" if below else ">=",
        "unit": unit,
        "met": met,
    }


def targets(result: dict[str, Any], options: BenchOptions) -> list[dict[str, Any]]:
    """Issue 13's goals: the backup verifies and the worker keeps half its rate; the purge keeps p99 < 50 ms."""
    backup, purge = result["backup"], result["purge"]
    under_load = backup["under_load"]
    verified = under_load["ok"] and under_load["check"] == "ok"
    return [
        _target("backup under load finished and verified", 1.0 if verified else 0.0, 1.0)
        | {
            "measured_text": f"ok={under_load['ok']}, {under_load['check_kind']}: {under_load['check']}",
            "goal_text": "ok, check ok",
        },
        _target(
            "worker events/s during the backup ÷ undisturbed", backup["share_pct"], GOAL_BACKUP_SHARE_PCT, unit="%"
        ),
        _target(
            f"publish→commit p99 during the purge at {options.rate:g} events/s",
            purge["during"]["latency_ms"].get("p99"),
            GOAL_PURGE_P99_MS,
            below=True,
            unit="ms",
        ),
        _target("purge deleted every purgeable row", float(purge["rows_deleted"] or 0), float(purge["rows_purgeable"]))
        | {"measured_text": f"{purge['rows_deleted'] or 0:,} rows", "goal_text": f"{purge['rows_purgeable']:,} rows"},
    ]
