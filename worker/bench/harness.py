"""One benchmark run: a scratch database, a queue of its own, a worker subprocess, a publisher, a watcher.

`run_workload` measures one workload for *ours* and the *naive* design (and arq's *no-op* rate for
fan-in) one after the other on the same machine and Redis, each on a fresh database, and returns
plain dicts that `report` prints and `--json` dumps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from events import LingeringPublisher, Publisher
from events.catalogue import BaseEvent
from worker.bench import workloads
from worker.bench.baselines import NAIVE_FUNCTION, NOOP_FUNCTION, enqueue_single_jobs
from worker.bench.observe import CommitWatcher, percentiles_ms, process_memory_kb
from worker.bench.workloads import Seeded

#: Called with (committed, total) while a run is going.
Progress = Callable[[int, int], None]
PUBLISH_CHUNK = 1000
MEMORY_BACKLOG = 50_000  #: events the memory run lets wait in Redis (Redis is not under test)


class BenchError(RuntimeError):
    """A run could not finish (the worker died, events stopped being applied); the message says what it saw."""


@dataclass(frozen=True)
class BenchOptions:
    """What every run of one `komas bench` shares."""

    redis_url: str
    seed: int = 42
    naive_max_jobs: int = 1
    linger_ms: float = 5.0
    rate: float = 500.0
    stall_timeout_s: float = 60.0
    poll_interval_s: float = 0.002
    worker_overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class Published:
    """What the producer side did: when each event's publish call started, and the job ids to clean up."""

    started_at: dict[str, float] = field(default_factory=dict)
    job_ids: set[str] = field(default_factory=set)
    first_at: float | None = None
    last_ack_at: float | None = None
    #: False for huge runs: no per-event times (no latency figures), only counts.
    track: bool = True

    def calls(self, events: Sequence[BaseEvent], started: float, job_ids: Iterable[str]) -> None:
        self.first_at = started if self.first_at is None else min(self.first_at, started)
        if self.track:
            for event in events:
                self.started_at[str(event.event_id)] = started
        for job_id in job_ids:
            self.job_ids.update(job_id.split(","))
        self.last_ack_at = time.perf_counter()


# --- the scratch database ----------------------------------------------------------------------


async def seed_database(url: str) -> Seeded:
    """Migrate the scratch database and create the bots and presets the events refer to (before any worker runs)."""
    from worker.store.db import close_db, init_db
    from worker.store.managers import BotManager, PresetManager

    await init_db(url).ensure_schema()
    try:
        bot_ids = [
            (await BotManager.create(name=f"bench-bot-{n}", symbol="BTCUSDT", timeframe="15m", position_size=100.0)).id
            for n in range(workloads.BOTS)
        ]
        preset_ids = [(await PresetManager.create(name=f"bench-preset-{n}")).id for n in range(workloads.PRESETS)]
    finally:
        await close_db()
    return Seeded(bot_ids=tuple(bot_ids), preset_ids=tuple(preset_ids))


def database_counts(path: Path) -> dict[str, int]:
    """What the run left in the database: the proof that every event was applied, once."""
    queries = {
        "processed_events": "SELECT count(*) FROM processed_events",
        "signals": "SELECT count(*) FROM signals",
        "closed_signals": "SELECT count(*) FROM signals WHERE status = 'closed'",
        "bot_stats_signals": "SELECT coalesce(sum(total_signals), 0) FROM bots",
        "backtest_results": "SELECT count(*) FROM backtest_results",
        "dead_letters": "SELECT count(*) FROM dead_letters",
        "parked_events": "SELECT count(*) FROM parked_events",
    }
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
        return {name: int(connection.execute(sql).fetchone()[0]) for name, sql in queries.items()}


# --- the worker subprocess ---------------------------------------------------------------------


class WorkerProcess:
    """`python -m worker.bench.worker_proc` on the scratch database and queue; always stopped on exit."""

    def __init__(
        self,
        variant: str,
        directory: Path,
        env: dict[str, str],
        *,
        burst: bool = False,
        max_jobs: int | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        self.variant = variant
        self.report_path = directory / f"{variant}.report.json"
        self.ready_path = directory / f"{variant}.report.json.ready"
        self.log_path = directory / f"{variant}.stderr.log"
        command = [sys.executable, "-m", "worker.bench.worker_proc", variant, "--report", str(self.report_path)]
        command += ["--burst"] if burst else []
        command += ["--max-jobs", str(max_jobs)] if max_jobs is not None else []
        command += ["--overrides", json.dumps(overrides)] if overrides else []
        self._command = command
        self._env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(self._command, env=self._env, stdout=self._log, stderr=self._log)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def wait_ready(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """Wait until the worker has opened and migrated the database (its startup hook writes the file)."""
        deadline = time.monotonic() + timeout_s
        while not self.ready_path.exists():
            if not self.alive():
                raise BenchError(f"the {self.variant} worker exited before it was ready:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"the {self.variant} worker was not ready within {timeout_s:.0f}s")
            await asyncio.sleep(0.01)
        ready: dict[str, Any] = json.loads(self.ready_path.read_text())
        return ready

    async def wait_exit(self, timeout_s: float) -> int | None:
        """Wait for the process to end by itself; None if it is still running after `timeout_s`."""
        if self.process is None:
            return None
        try:
            return await asyncio.to_thread(self.process.wait, timeout_s)
        except subprocess.TimeoutExpired:
            return None

    async def stop(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """SIGTERM (running jobs finish), SIGKILL if that takes too long; returns the worker's exit report."""
        if self.process is not None:
            if self.alive():
                self.process.send_signal(signal.SIGTERM)
                if await self.wait_exit(timeout_s) is None:
                    self.process.kill()
            self.process.wait()
        self._close_log()
        if not self.report_path.exists():
            raise BenchError(f"the {self.variant} worker left no report:\n{self.log_tail()}")
        report: dict[str, Any] = json.loads(self.report_path.read_text())
        return report

    def kill(self) -> None:
        """Last resort on any error path: no worker outlives the benchmark."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


# --- publishing --------------------------------------------------------------------------------


def _chunks(events: Sequence[BaseEvent], size: int = PUBLISH_CHUNK) -> Iterator[Sequence[BaseEvent]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


class Producer:
    """Publishes for one variant: ours through `events.Publisher`, the naive design one job per event."""

    def __init__(
        self, variant: str, publisher: Publisher, client: aioredis.Redis, queue: str, *, track: bool = True
    ) -> None:
        self.variant = variant
        self.publisher = publisher
        self.client = client
        self.queue = queue
        self.published = Published(track=track)
        self._run = uuid.uuid4().hex[:8]
        self._next = 0

    def _naive_ids(self, count: int) -> list[str]:
        """Zero-padded sequence ids: arq breaks ties of equal scores by id, so queue order = publish order."""
        start, self._next = self._next, self._next + count
        return [f"bench-{self._run}-{number:09d}" for number in range(start, start + count)]

    async def many(self, events: Sequence[BaseEvent]) -> None:
        """One `publish_many` call (ours), or one job per event written in one round trip (naive)."""
        started = time.perf_counter()
        if self.variant == "ours":
            job_ids = await self.publisher.publish_many(events)
        else:
            job_ids = self._naive_ids(len(events))
            wire = [event.to_wire() for event in events]
            await enqueue_single_jobs(self.client, self.queue, NAIVE_FUNCTION, wire, job_ids)
        self.published.calls(events, started, job_ids)

    async def single(self, event: BaseEvent, batcher: LingeringPublisher | None = None) -> None:
        """One event, one call: ours through the lingering batcher (or `publish` without one), naive as one job."""
        started = time.perf_counter()
        if self.variant != "ours":
            job_ids = self._naive_ids(1)
            await enqueue_single_jobs(self.client, self.queue, NAIVE_FUNCTION, [event.to_wire()], job_ids)
        elif batcher is not None:
            job_ids = [await batcher.publish(event)]
        else:
            job_ids = [await self.publisher.publish(event)]
        self.published.calls([event], started, job_ids)


# --- one run -----------------------------------------------------------------------------------


@dataclass
class Scratch:
    """A run's temporary directory, database and queue."""

    directory: Path
    queue: str

    @property
    def db_path(self) -> Path:
        return self.directory / "bench.db"

    @property
    def url(self) -> str:
        return f"sqlite+aiosqlite:///{self.db_path}"

    def worker_env(self, redis_url: str) -> dict[str, str]:
        """The worker's environment: the caller's `KOMAS_*` (same settings), our database, queue and Redis."""
        env = dict(os.environ)
        env |= {
            "KOMAS_DATABASE_URL": self.url,
            "KOMAS_QUEUE": self.queue,
            "KOMAS_REDIS_URL": redis_url,
            "KOMAS_LOG_LEVEL": "WARNING",
        }
        return env


async def _cleanup_redis(client: aioredis.Redis, queue: str, job_ids: Iterable[str]) -> None:
    """Remove what the run left in Redis: its queue, health key, and every job's keys (results are kept 1 h)."""
    keys = [queue, f"{queue}:health-check"]
    for job_id in job_ids:
        keys += [f"arq:job:{job_id}", f"arq:result:{job_id}", f"arq:retry:{job_id}", f"arq:in-progress:{job_id}"]
    for start in range(0, len(keys), 4000):
        await client.delete(*keys[start : start + 4000])


async def _wait_applied(
    watcher: CommitWatcher, worker: WorkerProcess, total: int, options: BenchOptions, progress: Progress
) -> float:
    """Wait until `total` events are visible; returns the perf_counter of the last one seen."""
    while watcher.count < total:
        progress(watcher.count, total)
        if watcher.error is not None:
            raise BenchError(f"the commit watcher failed: {watcher.error}")
        if not worker.alive():
            raise BenchError(f"the {worker.variant} worker exited early:\n{worker.log_tail()}")
        if time.perf_counter() - watcher.last_change_at > options.stall_timeout_s:
            counts = database_counts(watcher.db_path)
            raise BenchError(
                f"{watcher.count} of {total} events applied, none for {options.stall_timeout_s:.0f}s "
                f"(database: {counts}); worker log:\n{worker.log_tail()}"
            )
        await asyncio.sleep(0.05)
    progress(total, total)
    if watcher.track_ids and watcher.seen_at:
        return max(watcher.seen_at.values())
    return watcher.last_change_at


#: A workload's producer side: publishes through the producer; the callable says how many are applied so far.
Publish = Callable[[Producer, Callable[[], int]], Awaitable[None]]


async def measure(
    variant: str,
    total: int,
    seeded_plan: Callable[[Seeded], Publish],
    options: BenchOptions,
    progress: Progress,
    *,
    track_ids: bool = True,
) -> dict[str, Any]:
    """Run one variant against a fresh scratch database; returns its figures."""
    with tempfile.TemporaryDirectory(prefix="komas-bench-") as tmp:
        scratch = Scratch(Path(tmp), f"komas:bench:{uuid.uuid4().hex[:12]}")
        publish = seeded_plan(await seed_database(scratch.url))
        worker = WorkerProcess(
            variant,
            scratch.directory,
            scratch.worker_env(options.redis_url),
            max_jobs=options.naive_max_jobs if variant == "naive" else None,
            overrides=options.worker_overrides,
        )
        client = aioredis.Redis.from_url(options.redis_url)
        watcher = CommitWatcher(scratch.db_path, interval_s=options.poll_interval_s, track_ids=track_ids)
        producer: Producer | None = None
        try:
            worker.start()
            ready = await worker.wait_ready()
            watcher.start()
            async with Publisher.connect(options.redis_url, queue=scratch.queue) as publisher:
                producer = Producer(variant, publisher, client, scratch.queue, track=track_ids)
                publishing = asyncio.ensure_future(publish(producer, lambda: watcher.count))
                try:
                    last_commit = await _wait_applied(watcher, worker, total, options, progress)
                    await publishing
                finally:
                    if not publishing.done():
                        publishing.cancel()
                        with contextlib.suppress(BaseException):
                            await publishing
            memory_now = process_memory_kb(worker.pid)
            watcher.stop()
            exit_report = await worker.stop()
        finally:
            watcher.stop()
            worker.kill()
            with contextlib.suppress(Exception):
                await _cleanup_redis(client, scratch.queue, producer.published.job_ids if producer else ())
            await client.aclose()
        published = producer.published
        assert published.first_at is not None
        assert published.last_ack_at is not None
        latencies = [
            watcher.seen_at[event_id] - at
            for event_id, at in published.started_at.items()
            if event_id in watcher.seen_at
        ]
        elapsed = last_commit - published.first_at
        end_rss = memory_now or exit_report
        return {
            "events": total,
            "jobs": len(published.job_ids),
            "elapsed_s": round(elapsed, 3),
            "publish_s": round(published.last_ack_at - published.first_at, 3),
            "drain_after_publish_s": round(max(0.0, last_commit - published.last_ack_at), 3),
            "events_per_s": round(total / elapsed, 1) if elapsed > 0 else None,
            "latency_ms": percentiles_ms(latencies),
            "worker_rss_mb": {
                "ready": _mb(ready["rss_kb"]),
                "end": _mb(end_rss["rss_kb"]),
                "peak": _mb(max(exit_report["peak_kb"], end_rss["peak_kb"])),
            },
            "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(ready.get("synchronous") or -1),
            "jobs_failed": exit_report["jobs_failed"],
            "database": database_counts(scratch.db_path),
        }


async def measure_noop(jobs: int, options: BenchOptions, progress: Progress) -> dict[str, Any]:
    """arq's own rate: `jobs` no-op jobs queued first, then a burst worker drains them; timed inside the worker."""
    with tempfile.TemporaryDirectory(prefix="komas-bench-") as tmp:
        scratch = Scratch(Path(tmp), f"komas:bench:{uuid.uuid4().hex[:12]}")
        await seed_database(scratch.url)  # the same startup work as the others (the database is opened)
        client = aioredis.Redis.from_url(options.redis_url)
        run = uuid.uuid4().hex[:8]
        job_ids = [f"bench-{run}-{number:09d}" for number in range(jobs)]
        worker = WorkerProcess(
            "noop",
            scratch.directory,
            scratch.worker_env(options.redis_url),
            burst=True,
            overrides=options.worker_overrides,
        )
        try:
            for start in range(0, jobs, PUBLISH_CHUNK):
                chunk = job_ids[start : start + PUBLISH_CHUNK]
                await enqueue_single_jobs(client, scratch.queue, NOOP_FUNCTION, [None] * len(chunk), chunk)
            worker.start()
            ready = await worker.wait_ready()
            while worker.alive():
                progress(jobs - int(await client.zcard(scratch.queue)), jobs)
                await asyncio.sleep(0.05)
            progress(jobs, jobs)
            report = await worker.stop()
        finally:
            worker.kill()
            with contextlib.suppress(Exception):
                await _cleanup_redis(client, scratch.queue, job_ids)
            await client.aclose()
        drain = report.get("drain_s")
        return {
            "jobs": report["jobs_complete"],
            "drain_s": round(drain, 3) if drain else None,
            "jobs_per_s": round(report["jobs_complete"] / drain, 1) if drain else None,
            "worker_rss_mb": {
                "ready": _mb(ready["rss_kb"]),
                "end": _mb(report["rss_kb"]),
                "peak": _mb(report["peak_kb"]),
            },
            "jobs_failed": report["jobs_failed"],
        }


def _mb(kb: int) -> float:
    return round(kb / 1024, 1)
