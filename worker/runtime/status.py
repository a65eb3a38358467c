"""The system at a glance: queue depth and age, worker health, the writer and its standbys, dead letters,
last applied event, size, and maintenance (last and next runs, last backup)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from sqlalchemy import func, select

from worker.apply.parking import parked_count
from worker.config import Config
from worker.ops.maintenance import database_file, newest_backup, wal_bytes
from worker.runtime.client import queue_depth_and_age
from worker.runtime.lease import lease_status
from worker.runtime.maintenance_jobs import last_runs_key, maintenance_cron_jobs
from worker.store.db import read_session
from worker.store.engines import sqlite_file
from worker.store.managers.dead_letters import DeadLetterManager
from worker.store.models import ProcessedEvent


async def queue_status(config: Config) -> dict[str, Any]:
    """Depth and oldest age of the queue, arq's health-check line of the worker (None: no worker), and the
    writer lease: the active worker (host, pid, since, token) and the standbys."""
    client = aioredis.Redis.from_url(config.redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        depth, age = await queue_depth_and_age(client, config.queue)
        health = await client.get(config.queue + ":health-check")
        writer = await lease_status(client, config.database_url, config.writer_partition)
    finally:
        await client.aclose()
    return {
        "queue": config.queue,
        "depth": depth,
        "oldest_age_s": None if age is None else round(age, 3),
        "worker": health.decode() if health else None,
        "writer": writer,
    }


def database_size(url: str) -> int | None:
    """Bytes on disk of a SQLite database, WAL included; None for other databases."""
    database = sqlite_file(url)
    if database is None:
        return None
    return (database.stat().st_size if database.exists() else 0) + wal_bytes(database)


async def database_status(config: Config) -> dict[str, Any]:
    async with read_session() as session:
        last = (
            await session.execute(
                select(ProcessedEvent.event_id, ProcessedEvent.event_type, ProcessedEvent.applied_at)
                .order_by(ProcessedEvent.applied_at.desc())
                .limit(1)
            )
        ).first()
        applied = int(await session.scalar(select(func.count()).select_from(ProcessedEvent)) or 0)
    return {
        "applied_events": applied,
        "parked_events": await parked_count(),
        "dead_letters": await DeadLetterManager.count(),
        "last_applied": None
        if last is None
        else {"event_id": last.event_id, "type": last.event_type, "at": last.applied_at.isoformat()},
        "database_bytes": database_size(config.database_url),
    }


def _last_backup(config: Config) -> dict[str, Any] | None:
    newest = newest_backup(config)
    if newest is None:
        return None
    stat = newest.stat()
    at = datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(timespec="seconds")
    return {"file": str(newest), "bytes": stat.st_size, "at": at}


async def maintenance_status(config: Config, client: aioredis.Redis | None = None) -> dict[str, Any]:
    """Each maintenance job's last run (outcome, time) and next scheduled run, the last backup, the
    database's and the WAL's size, and the dedup window; `error` when Redis cannot be read."""
    now = datetime.now(UTC)
    schedule = {}
    for job in maintenance_cron_jobs(config):
        if job.name == "cron:ops:wal-watch":  # a watch, not a run: its checkpoints are recorded as checkpoints
            continue
        job.calculate_next(now)
        if job.next_run is not None:
            schedule[job.name.removeprefix("cron:ops:")] = job.next_run.isoformat(timespec="seconds")
    report: dict[str, Any] = {
        "next_runs": schedule,
        "dedup_window_s": config.dedup_window_s,
        "checkpoint_above_wal_bytes": config.cron_checkpoint_wal_bytes or None,
    }
    database = database_file(config)
    if database is not None and database.exists():
        report["database_bytes"] = database.stat().st_size
        report["wal_bytes"] = wal_bytes(database)
    report["last_backup"] = _last_backup(config)
    own = client is None
    client = client or aioredis.Redis.from_url(config.redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        runs: dict[bytes, bytes] = await client.hgetall(last_runs_key(config.queue))  # type: ignore[misc]
        report["last_runs"] = {name.decode(): json.loads(value) for name, value in sorted(runs.items())}
    except (redis.exceptions.RedisError, OSError) as exc:
        report["error"] = f"Redis at {config.redis_url} does not answer: {exc}"
    finally:
        if own:
            await client.aclose()
    return report
