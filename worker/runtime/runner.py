"""The arq worker: its settings (JSON both ways, queue, locks, cron) and a supervisor for Redis outages.

`komas worker` runs `run_forever`, which rebuilds the arq worker whenever Redis goes away and
comes back, so the process rides through outages and restarts. It writes only while it holds the
writer lease of its database (`worker.runtime.lease`): a second worker waits as a standby and takes over
when the first dies or stops. `arq worker.runtime.runner.WorkerSettings` also works (without the supervisor,
and without the lease: run only one).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Callable
from typing import Any, ClassVar

import redis.asyncio as aioredis
import redis.exceptions
from arq import Worker, cron, func
from arq.connections import RedisSettings

from worker.apply.registry import check_complete
from worker.config import Config, get_config
from worker.ops.dead_letters import dlq_drop, dlq_replay
from worker.runtime import metrics
from worker.runtime.group_commit import GroupCommitter
from worker.runtime.jobs import SUMMARY, apply_events, apply_in_transaction, dead_letter_job, retry_parked_job
from worker.runtime.komas_worker import KomasWorker
from worker.runtime.lease import LeaseLost, WriterLease, claim_fence
from worker.runtime.maintenance_jobs import (
    CRON_NAMES,
    MAINTENANCE_JOB,
    MAINTENANCE_TIMEOUT_S,
    maintenance,
    maintenance_cron_jobs,
)
from worker.runtime.poison import tolerant_deserializer
from worker.runtime.results import worker_dumps
from worker.runtime.warm_up import warm_up
from worker.store.db import close_db, init_db

log = logging.getLogger("komas.worker")

#: arq would fail a job after this many tries; ours decide long before (see `Config.max_crashes`).
MAX_TRIES = 1_000_000
FUNCTIONS: list[Any] = [
    apply_events,
    dead_letter_job,
    dlq_replay,
    dlq_drop,
    func(maintenance, timeout=MAINTENANCE_TIMEOUT_S),
]


def cron_jobs(config: Config | None = None) -> list[Any]:
    """Fresh each time: arq keeps the next run time on the cron object, which must not leak between workers.

    The parked-events passes, and the maintenance schedule of `config` (none without one).
    """
    parked = cron(retry_parked_job, second=set(range(0, 60, 5)), run_at_startup=True, timeout=60)
    return [parked, *(maintenance_cron_jobs(config) if config is not None else [])]


CRON_JOBS = cron_jobs()


async def startup(ctx: dict[str, Any]) -> None:
    """Open the database and bring its schema up to date before the first job."""
    config: Config = ctx.get("config") or get_config()
    check_complete()  # an event class without an applier would dead-letter all its events: refuse to start
    database = init_db(config.database_url)
    await database.ensure_schema()
    ctx["database"] = database
    lease: WriterLease | None = ctx.get("writer_lease")
    if lease is not None:  # run_forever took it: fence every write transaction, keep it renewed
        database.fence = await claim_fence(lease)
        metrics.LEASE_TOKEN.set(database.fence.token)
        ctx["lease_keeper"] = asyncio.create_task(lease.keep(database.fence, ctx["on_lease_lost"]))
    committer = GroupCommitter(apply_in_transaction)
    committer.start()
    ctx["committer"] = committer
    await warm_up(database, ctx.get("redis"), connections=warm_connections(config))
    if ctx.get("redis") is not None:
        ctx["metrics_refresher"] = asyncio.create_task(metrics.keep_refreshed(config, ctx["redis"]))
    tune_gc()


def warm_connections(config: Config) -> int:
    """Redis connections to open before the first job: the poll loop, a cron job, and the jobs' own commands.

    Jobs started together share their Redis round trips, so far fewer than `max_jobs` talk to
    Redis at once; a job that needs one more connection opens it then.
    """
    return min(config.max_jobs, 16) + 2


#: Collections of the youngest generation every this many net allocations (Python's default: 700).
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Fewer, cheaper garbage collections while jobs run.

    A batch of a thousand events makes tens of thousands of short-lived objects (decoded JSON,
    models, rows); with Python's defaults that triggered collections which also scanned the
    hundreds of thousands of long-lived objects of the imported libraries, and took about a fifth
    of the worker's time on big batches. Those are frozen out of collection once, at start-up,
    and the youngest generation is collected less often. Memory use stays flat: almost all of
    this garbage is freed by reference counting, not by the collector.
    """
    young, middle, oldest = gc.get_threshold()
    if young >= GC_YOUNG_THRESHOLD:  # once per process: the supervisor builds a new worker after an outage
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, oldest)


async def shutdown(ctx: dict[str, Any]) -> None:
    SUMMARY.flush()
    for name in ("lease_keeper", "metrics_refresher"):
        task: asyncio.Task[None] | None = ctx.pop(name, None)
        if task is not None:
            task.cancel()
    metrics.LEASE_TOKEN.set(0)
    committer: GroupCommitter | None = ctx.pop("committer", None)
    if committer is not None:
        await committer.stop()
    await close_db()


def _function_names() -> list[str]:
    return (
        [getattr(f, "name", None) or f.__name__ for f in FUNCTIONS] + [job.name for job in CRON_JOBS] + list(CRON_NAMES)
    )


#: How often the worker rewrites its health line (`komas status`); the line expires one second later.
#: arq's default is an hour: a killed worker looked alive, with counters an hour old, until then.
HEALTH_CHECK_INTERVAL_S = 10


def worker_options(config: Config) -> dict[str, Any]:
    """Keyword arguments for `arq.Worker`, derived from the configuration."""
    return {
        "functions": FUNCTIONS,
        "cron_jobs": cron_jobs(config),
        "queue_name": config.queue,
        "redis_settings": RedisSettings.from_dsn(config.redis_url),
        "job_serializer": worker_dumps,
        "job_deserializer": tolerant_deserializer(_function_names()),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "max_jobs": config.max_jobs,
        "poll_delay": config.poll_delay_s,
        "job_timeout": config.job_timeout_s,
        "max_tries": MAX_TRIES,
        "job_completion_wait": config.job_timeout_s,  # SIGTERM: finish in-flight jobs first
        "expires_extra_ms": config.job_ttl_s * 1000,
        "ctx": {"config": config},
        "log_results": False,  # apply_events logs its own one-line summary; arq's would repr every id
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
    }


#: The pause between looks at the queue while jobs arrive or run (`KOMAS_POLL_DELAY_S` is the idle one).
BUSY_POLL_DELAY_S = 0.002


def busy_poll_delay(config: Config) -> float:
    """arq's `poll_delay` for a worker that backs off to `config.poll_delay_s` when idle (never above it)."""
    return min(BUSY_POLL_DELAY_S, config.poll_delay_s)


def build_worker(config: Config | None = None, **overrides: Any) -> Worker:
    """An arq `Worker` for this configuration (tests pass `burst=True`)."""
    config = config or get_config()
    options = worker_options(config)
    options["poll_delay"] = busy_poll_delay(config)
    worker = KomasWorker(**{**options, **overrides})
    worker.idle_poll_delay_s = config.poll_delay_s
    worker.run_alone = frozenset({MAINTENANCE_JOB, dlq_replay.__name__, dlq_drop.__name__})
    # arq locks a running job for its timeout + 10 s; ours renew a short lock instead (see heartbeat).
    worker.in_progress_timeout_s = config.lock_ttl_s
    worker.ctx["short_lock"] = True  # jobs need not shorten it themselves (one Redis round trip saved)
    # A burst worker stops once the queue is empty: its parked-events job must not hold a pass window
    # open (arq queues the next cron run 1 s ahead, so a 4 s window every 5 s kept the queue full forever).
    worker.ctx["burst"] = bool(worker.burst)
    return worker


REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


async def run_forever(
    config: Config, *, burst: bool = False, stop_requested: Callable[[], bool] = lambda: False
) -> None:
    """Run the worker while holding the writer lease (a standby until then); when Redis or the lease is lost,
    close what is left and start again (with back-off after an outage or an error).

    `stop_requested` tells whether SIGTERM/SIGINT came while the process was still starting
    (before our handlers): then it stops at once, cleanly, with nothing taken from the queue.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    metrics.serve(config.metrics_port)
    client = aioredis.Redis.from_url(config.redis_url, socket_timeout=5, socket_connect_timeout=5)
    lease = WriterLease(client, config.database_url, partition=config.writer_partition, ttl_s=config.writer_lease_ttl_s)
    delay = 1.0
    try:
        while not stop.is_set():
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)  # while waiting for the lease: nothing to finish
            if stop_requested():
                log.info("stop requested while starting: exiting")
                return
            try:
                if not await lease.wait(stop):
                    return
            except REDIS_DOWN as exc:
                log.warning("Redis unavailable (%s); trying again in %.0fs", exc, delay)
                await _back_off(stop, delay)
                delay = min(delay * 2, 30.0)
                continue
            if await _run_holding_lease(config, lease, stop, burst=burst):
                delay = 1.0
                continue  # the lease was lost: back to standby at once
            if not stop.is_set():
                await _back_off(stop, delay)
                delay = min(delay * 2, 30.0)
    finally:
        with contextlib.suppress(*REDIS_DOWN):
            await lease.release()  # a stopping worker hands over at once
        await client.aclose()


async def _back_off(stop: asyncio.Event, delay: float) -> None:
    """Wait `delay` seconds, cut short by a stop signal."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=delay)


async def _run_holding_lease(config: Config, lease: WriterLease, stop: asyncio.Event, *, burst: bool) -> bool:
    """Run one arq worker while this process holds the writer lease; True when it ended because the lease was lost.

    The worker stops when Redis is lost, on an unexpected error, on a stop signal, or when the lease
    is lost (then its running jobs finish: their transactions fail the fencing check and go back to
    the queue).
    """
    loop = asyncio.get_running_loop()
    worker = build_worker(config, burst=burst, handle_signals=False)
    lost: list[str] = []

    def on_lease_lost(reason: str) -> None:
        log.warning("writer lease lost: %s; stopping work and waiting as a standby", reason)
        lost.append(reason)
        worker.handle_sig_wait_for_completion(signal.SIGUSR1)

    worker.ctx["writer_lease"] = lease
    worker.ctx["on_lease_lost"] = on_lease_lost
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _request_stop, worker, stop, sig)
    try:
        worker.main_task = asyncio.ensure_future(worker.main())
        await worker.main_task
        if burst:
            stop.set()
    except asyncio.CancelledError:
        if not stop.is_set() and not lost:
            raise
    except LeaseLost as exc:
        log.warning("%s; waiting as a standby", exc)
        lost.append(str(exc))
    except REDIS_DOWN as exc:
        log.warning("Redis unavailable (%s); restarting the worker", exc)
    except Exception:
        if "committer" not in worker.ctx:  # it never started (bad configuration, no database): say so and exit
            raise
        # The last net: a worker that stopped on one bad job would stop on it again at every start.
        log.exception("the worker stopped on an unexpected error; starting it again")
    finally:
        with contextlib.suppress(*REDIS_DOWN, RuntimeError):
            await worker.close()
        await close_db()
    return bool(lost) and not stop.is_set()


def _request_stop(worker: Worker, stop: asyncio.Event, sig: signal.Signals) -> None:
    """SIGTERM/SIGINT: stop taking jobs, let running ones finish (up to the job timeout), then exit."""
    if stop.is_set():
        log.warning("second %s: stopping now", sig.name)
        worker.handle_sig(sig)
        return
    stop.set()
    worker.handle_sig_wait_for_completion(sig)


class WorkerSettings:
    """For the `arq` command line: `arq worker.runtime.runner.WorkerSettings` (reads KOMAS_* at import)."""

    functions: ClassVar[list[Any]] = FUNCTIONS
    cron_jobs: ClassVar[list[Any]] = CRON_JOBS
    job_serializer = staticmethod(worker_dumps)
    job_deserializer = staticmethod(tolerant_deserializer(_function_names()))
    on_startup = staticmethod(startup)
    on_shutdown = staticmethod(shutdown)
    max_tries = MAX_TRIES


def _fill_from_config() -> None:
    options = worker_options(get_config())
    derived = (
        "queue_name",
        "redis_settings",
        "max_jobs",
        "poll_delay",
        "job_timeout",
        "job_completion_wait",
        "health_check_interval",
        "ctx",
    )
    for key in derived:
        setattr(WorkerSettings, key, options[key])


_fill_from_config()
