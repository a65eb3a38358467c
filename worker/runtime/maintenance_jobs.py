"""The maintenance operations (`worker.ops.catalogue`) as arq jobs: on demand, and on a schedule.

`maintenance(name, options)` is what `komas ops` and `POST /api/ops/{name}` enqueue; the schedule
is arq cron jobs built from the `KOMAS_CRON_*` settings (0 turns one off). Each run leaves its
outcome in Redis (`<queue>:ops:last`, a hash by operation) for `komas status` and `/api/status`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from typing import Any

from arq import cron
from arq.cron import CronJob
from arq.typing import WorkerCoroutine

from worker.config import Config, get_config
from worker.ops.catalogue import run_operation
from worker.ops.maintenance import database_file, wal_bytes
from worker.runtime import metrics

log = logging.getLogger("komas.ops")

#: The longest a maintenance job may run (a backup or vacuum of a large database takes minutes).
MAINTENANCE_TIMEOUT_S = 6 * 3600
#: Every scheduled job's name (arq's `cron:` prefix), known to the job gate whatever the settings.
SCHEDULED = ("backup", "checkpoint", "optimize", "purge", "wal-watch")
CRON_NAMES = tuple(f"cron:ops:{name}" for name in SCHEDULED)


#: The job function's name, as the CLI and the API enqueue it.
MAINTENANCE_JOB = "maintenance"


#: One maintenance operation at a time in a worker (two backups at once would race their rotation).
_RUNNING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _one_at_a_time() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _RUNNING.get(loop)
    if lock is None:
        lock = _RUNNING[loop] = asyncio.Lock()
    return lock


def last_runs_key(queue: str) -> str:
    return f"{queue}:ops:last"


async def maintenance(ctx: dict[str, Any], name: Any = None, options: Any = None) -> dict[str, Any]:
    """Run one maintenance operation in the worker (the single writer) and answer its report."""
    config: Config = ctx.get("config") or get_config()
    started, at = time.monotonic(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        async with _one_at_a_time():
            result = await run_operation(config, name, options)
    except Exception as exc:  # reported to the caller, who waits for an answer, not for a failed job
        log.exception("maintenance %s failed", name)
        result = {"operation": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:1000]}
    seconds = round(time.monotonic() - started, 3)
    known = isinstance(name, str) and "operation" in result
    metrics.MAINTENANCE_RUNS.labels(name if known else "other", "ok" if result.get("ok") else "failed").inc()
    level = logging.INFO if result.get("ok") else logging.WARNING
    log.log(level, "maintenance %s: %s in %.1fs", name, "ok" if result.get("ok") else result.get("error"), seconds)
    redis = ctx.get("redis")
    if redis is not None and isinstance(name, str) and "operation" in result:
        record = {"at": at, "ok": bool(result.get("ok")), "seconds": seconds, "error": result.get("error")}
        if name == "backup" and result.get("file"):
            record.update(file=result["file"], bytes=result.get("bytes"))
        try:
            await redis.hset(last_runs_key(config.queue), name, json.dumps(record))
        except Exception as exc:  # the report matters more than the record of it
            log.warning("could not record the run of %s: %s", name, exc)
    return result


def _scheduled(name: str) -> WorkerCoroutine:
    async def run(ctx: dict[str, Any]) -> dict[str, Any]:
        return await maintenance(ctx, name, {})

    run.__qualname__ = run.__name__ = f"scheduled_{name.replace('-', '_')}"
    return run


async def wal_watch(ctx: dict[str, Any]) -> dict[str, Any]:
    """Every minute: a checkpoint as soon as the WAL is larger than `KOMAS_CRON_CHECKPOINT_WAL_BYTES`."""
    config: Config = ctx.get("config") or get_config()
    database = database_file(config)
    if (
        database is None
        or not config.cron_checkpoint_wal_bytes
        or wal_bytes(database) <= config.cron_checkpoint_wal_bytes
    ):
        return {}
    return await maintenance(ctx, "checkpoint", {})


def _every(step: int, size: int) -> set[int]:
    return set(range(0, size, step))


def maintenance_cron_jobs(config: Config) -> list[CronJob]:
    """The schedule from the settings; a job set to 0 is not registered at all."""
    options: dict[str, Any] = {"timeout": MAINTENANCE_TIMEOUT_S, "unique": True, "keep_result": 3600}
    #: name → (every N hours, minute) or (every N minutes, second), as the settings say; 0: off.
    hourly = {
        "backup": (config.cron_backup_hours, 17),
        "optimize": (config.cron_optimize_hours, 29),
        "purge": (config.cron_purge_hours, 43),
    }
    jobs: list[CronJob] = [
        cron(_scheduled(name), name=f"cron:ops:{name}", hour=_every(hours, 24), minute={minute}, **options)
        for name, (hours, minute) in hourly.items()
        if hours
    ]
    if config.cron_checkpoint_minutes:
        every = _every(config.cron_checkpoint_minutes, 60)
        jobs.append(cron(_scheduled("checkpoint"), name="cron:ops:checkpoint", minute=every, second={41}, **options))
    if config.cron_checkpoint_wal_bytes and database_file(config) is not None:
        jobs.append(cron(wal_watch, name="cron:ops:wal-watch", second={7}, **options))
    return jobs
