"""The system at a glance: queue depth and age, worker health, the writer and its standbys, dead letters,
last applied event, size."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from worker.config import Config
from worker.runtime.lease import lease_status
from worker.store.db import is_sqlite, read_session
from worker.store.managers.dead_letters import DeadLetterManager
from worker.store.models import ParkedEvent, ProcessedEvent


async def queue_status(config: Config) -> dict[str, Any]:
    """Depth and oldest age of the queue, arq's health-check line of the worker (None: no worker), and the
    writer lease: the active worker (host, pid, since, token) and the standbys."""
    client = aioredis.Redis.from_url(config.redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        depth = int(await client.zcard(config.queue))
        oldest = await client.zrange(config.queue, 0, 0, withscores=True)
        health = await client.get(config.queue + ":health-check")
        writer = await lease_status(client, config.database_url, config.writer_partition)
    finally:
        await client.aclose()
    age = max(0.0, time.time() - oldest[0][1] / 1000) if oldest else None
    return {
        "queue": config.queue,
        "depth": depth,
        "oldest_age_s": None if age is None else round(age, 3),
        "worker": health.decode() if health else None,
        "writer": writer,
    }


def database_size(url: str) -> int | None:
    """Bytes on disk of a SQLite database, WAL included; None for other databases."""
    if not is_sqlite(url):
        return None
    database = make_url(url).database
    if not database:
        return None
    return sum(path.stat().st_size for path in (Path(database), Path(database + "-wal")) if path.exists())


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
        parked = int(await session.scalar(select(func.count()).select_from(ParkedEvent)) or 0)
    return {
        "applied_events": applied,
        "parked_events": parked,
        "dead_letters": await DeadLetterManager.count(),
        "last_applied": None
        if last is None
        else {"event_id": last.event_id, "type": last.event_type, "at": last.applied_at.isoformat()},
        "database_bytes": database_size(config.database_url),
    }
