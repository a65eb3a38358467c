"""The arq worker: its settings (JSON serializer, queue, limits) and lifecycle hooks.

`arq worker.runner.WorkerSettings` and `komas worker` run the same thing.
"""

from __future__ import annotations

from typing import Any, ClassVar

from arq import Worker
from arq.connections import RedisSettings

from events.wire import dumps, loads
from worker.config import Config, get_config
from worker.db import close_db, init_db
from worker.jobs import apply_events

#: arq gives up after this many tries of one job; high, because a crash counts as a try.
MAX_TRIES = 1000


async def startup(ctx: dict[str, Any]) -> None:
    """Open the database and bring its schema up to date before the first job."""
    config: Config = ctx.get("config") or get_config()
    database = init_db(config.database_url)
    await database.ensure_schema()
    ctx["database"] = database


async def shutdown(ctx: dict[str, Any]) -> None:
    await close_db()


def worker_options(config: Config) -> dict[str, Any]:
    """Keyword arguments for `arq.Worker`, derived from the configuration."""
    return {
        "functions": [apply_events],
        "queue_name": config.queue,
        "redis_settings": RedisSettings.from_dsn(config.redis_url),
        "job_serializer": dumps,
        "job_deserializer": loads,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "max_jobs": config.max_jobs,
        "job_timeout": config.job_timeout_s,
        "max_tries": MAX_TRIES,
        "job_completion_wait": config.job_timeout_s,  # SIGTERM: finish in-flight jobs first
        "ctx": {"config": config},
    }


def build_worker(config: Config | None = None, **overrides: Any) -> Worker:
    """An arq `Worker` for this configuration (tests pass `burst=True`)."""
    return Worker(**{**worker_options(config or get_config()), **overrides})


class WorkerSettings:
    """For the `arq` command line: `arq worker.runner.WorkerSettings`."""

    functions: ClassVar[list[Any]] = [apply_events]
    job_serializer = staticmethod(dumps)
    job_deserializer = staticmethod(loads)
    on_startup = staticmethod(startup)
    on_shutdown = staticmethod(shutdown)
    max_tries = MAX_TRIES


def _fill_from_config() -> None:
    config = get_config()
    options = worker_options(config)
    for key in ("queue_name", "redis_settings", "max_jobs", "job_timeout", "job_completion_wait", "ctx"):
        setattr(WorkerSettings, key, options[key])


_fill_from_config()
