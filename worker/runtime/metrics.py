"""The worker's Prometheus metrics (`prometheus-client`), served on `KOMAS_METRICS_PORT` by `komas worker`.

Names follow Prometheus conventions: base units (seconds, bytes), `_total` counters, no ids as
labels (an event type is a label only when the catalogue knows it; anything else is `other`).
Counted as the worker works: events by type and outcome, batch sizes, how long applying a batch
took, enqueue→commit latency, maintenance runs. Refreshed every few seconds while the worker
runs (one Redis round trip, two cheap reads): queue depth and oldest job age, parked events and
dead letters, database and WAL size, the writer lease's token, the last backup's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter as Tally
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.process_collector import ProcessCollector

from events.catalogue import EVENT_TYPES
from worker.apply.parking import parked_count
from worker.config import Config
from worker.ops.maintenance import database_file, newest_backup, wal_bytes
from worker.runtime.client import queue_depth_and_age
from worker.store.managers.dead_letters import DeadLetterManager

log = logging.getLogger("komas.worker")

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

KNOWN_TYPES = frozenset(str(model.model_fields["type"].default) for model in EVENT_TYPES)
OUTCOMES = ("applied", "duplicate", "parked", "dead_lettered", "rejected")

EVENTS = Counter(
    "komas_events", "Events the worker settled, by type and outcome.", ["type", "outcome"], registry=REGISTRY
)
JOBS = Counter("komas_jobs", "Event jobs the worker ran, by outcome.", ["outcome"], registry=REGISTRY)
BATCH_SIZE = Histogram(
    "komas_batch_size_events",
    "Events per job.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
    registry=REGISTRY,
)
APPLY_SECONDS = Histogram(
    "komas_batch_apply_duration_seconds",
    "From a job's start to its events committed (group commit included).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
LATENCY_SECONDS = Histogram(
    "komas_enqueue_to_commit_seconds",
    "From a job's enqueue time (the producer's clock) to its events committed.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
MAINTENANCE_RUNS = Counter(
    "komas_maintenance_runs", "Maintenance operations run, by operation and outcome.", ["operation", "outcome"],
    registry=REGISTRY,
)  # fmt: skip
QUEUE_DEPTH = Gauge("komas_queue_depth_jobs", "Jobs waiting in the queue.", registry=REGISTRY)
OLDEST_AGE = Gauge("komas_queue_oldest_age_seconds", "Age of the oldest queued job (0: none).", registry=REGISTRY)
PARKED = Gauge("komas_parked_events", "Events waiting for what they refer to.", registry=REGISTRY)
DEAD_LETTERS = Gauge("komas_dead_letters", "Dead letters not replayed.", registry=REGISTRY)
DATABASE_BYTES = Gauge("komas_database_size_bytes", "The SQLite database file.", registry=REGISTRY)
WAL_BYTES = Gauge("komas_wal_size_bytes", "The SQLite write-ahead log.", registry=REGISTRY)
LEASE_TOKEN = Gauge(
    "komas_writer_lease_token", "This worker's fencing token while it holds the writer lease (0: standby).",
    registry=REGISTRY,
)  # fmt: skip
LAST_BACKUP = Gauge(
    "komas_last_backup_timestamp_seconds", "When the newest backup was written (0: none).", registry=REGISTRY
)

#: How often the gauges are refreshed while the worker runs.
REFRESH_S = 5.0


def type_label(event_type: Any) -> str:
    return event_type if isinstance(event_type, str) and event_type in KNOWN_TYPES else "other"


def count_events(tally: Tally[tuple[str, str]]) -> None:
    """Add a job's events, counted by (type, outcome)."""
    for (event_type, outcome), n in tally.items():
        EVENTS.labels(type_label(event_type), outcome).inc(n)


def observe_job(size: int, started: float, enqueued_ms: int | None, outcome: str) -> None:
    """A job's size, how long applying it took, and its enqueue→commit latency."""
    JOBS.labels(outcome).inc()
    BATCH_SIZE.observe(size)
    APPLY_SECONDS.observe(time.monotonic() - started)
    if enqueued_ms:
        LATENCY_SECONDS.observe(max(0.0, time.time() - enqueued_ms / 1000))


def serve(port: int) -> bool:
    """Serve `/metrics` on `port` in a thread (0: off); False when the port is taken (a second worker here)."""
    if not port:
        return False
    try:
        start_http_server(port, registry=REGISTRY)
    except OSError as exc:
        log.warning("metrics not served: port %d: %s (set KOMAS_METRICS_PORT)", port, exc)
        return False
    log.info("metrics on http://0.0.0.0:%d/metrics", port)
    return True


async def refresh(config: Config, redis: Any) -> None:
    """Set the gauges from Redis, the database and the files (see the module)."""
    depth, age = await queue_depth_and_age(redis, config.queue)
    QUEUE_DEPTH.set(depth)
    OLDEST_AGE.set(age or 0.0)
    PARKED.set(await parked_count())
    DEAD_LETTERS.set(await DeadLetterManager.count())
    database = database_file(config)
    if database is not None and database.exists():
        DATABASE_BYTES.set(database.stat().st_size)
        WAL_BYTES.set(wal_bytes(database))
        newest = newest_backup(config)
        LAST_BACKUP.set(newest.stat().st_mtime if newest is not None else 0)


async def keep_refreshed(config: Config, redis: Any) -> None:
    """Refresh the gauges every `REFRESH_S` until cancelled; a failed refresh waits for the next."""
    while True:
        with contextlib.suppress(Exception):
            await refresh(config, redis)
        await asyncio.sleep(REFRESH_S)
