"""The worker process of a benchmark run: `python -m worker.bench.worker_proc VARIANT --report FILE`.

A subprocess so that its peak RSS is its own. Configuration comes from `KOMAS_*` like the real
worker's. *ours* is `worker.runtime.runner.build_worker` with nothing changed but a startup hook that says
"ready"; *naive* and *noop* are the same arq settings with the baseline job instead of ours.

Files it writes, as JSON: `FILE.ready` once the database is open and migrated (the harness waits for
it before starting the clock), `FILE` at exit (RSS, job counts). SIGTERM or SIGINT: let running jobs
finish, then exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from arq import Worker

from worker.bench import baselines
from worker.config import get_config
from worker.runtime.poison import tolerant_deserializer
from worker.runtime.runner import build_worker, busy_poll_delay, worker_options

VARIANTS = ("ours", "naive", "noop")


def rss_kb() -> dict[str, int]:
    """Current (VmRSS) and peak (VmHWM) resident size in KiB; the peak from getrusage where /proc is missing."""
    found: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0])
    peak = found.get("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"rss_kb": found.get("VmRSS", peak), "peak_kb": peak}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write then rename, so the harness never reads half a file."""
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(data))
    partial.replace(path)


async def _synchronous_pragma() -> int | None:
    """`PRAGMA synchronous` of the worker's writer engine (2 = FULL), None off SQLite."""
    from worker.store.db import get_database, is_sqlite

    database = get_database()
    if not is_sqlite(database.url):
        return None
    async with database.writer.connect() as connection:
        value = (await connection.exec_driver_sql("PRAGMA synchronous")).scalar()
    return int(value) if value is not None else None


def make_worker(variant: str, *, burst: bool, max_jobs: int | None, ready: Path, overrides: dict[str, Any]) -> Worker:
    """The arq worker of this variant; built inside the running loop (arq keeps the loop it was built on)."""
    config = get_config()
    original_startup: Callable[[dict[str, Any]], Awaitable[None]] = worker_options(config)["on_startup"]

    async def startup(ctx: dict[str, Any]) -> None:
        await original_startup(ctx)
        synchronous = None
        with contextlib.suppress(Exception):  # a figure for the report, never a reason to fail the run
            synchronous = await _synchronous_pragma()
        write_json(ready, {"pid": os.getpid(), "synchronous": synchronous, **rss_kb()})

    options: dict[str, Any] = {"burst": burst, "handle_signals": False, "on_startup": startup, **overrides}
    if max_jobs is not None:
        options["max_jobs"] = max_jobs
    if variant == "ours":
        return build_worker(config, **options)
    function = baselines.naive_apply_event if variant == "naive" else baselines.noop
    options |= {
        "functions": [function],
        "cron_jobs": [],
        "job_deserializer": tolerant_deserializer([function.__name__]),
    }
    # The baselines are arq's own Worker with the same settings, polling as often as ours does while
    # busy (they always are here); ours starts jobs with fewer round trips.
    same = worker_options(config) | {"poll_delay": busy_poll_delay(config)}
    return Worker(**{**same, **options})


async def serve(args: argparse.Namespace) -> dict[str, Any]:
    """Run the worker until the queue is drained (burst) or a signal arrives; then report."""
    report = Path(args.report)
    worker = make_worker(
        args.variant,
        burst=args.burst,
        max_jobs=args.max_jobs,
        ready=report.with_name(report.name + ".ready"),
        overrides=json.loads(args.overrides),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    main = asyncio.ensure_future(worker.main())
    worker.main_task = main
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not main.done():
            worker.handle_sig_wait_for_completion(signal.SIGTERM)  # finish running jobs, then cancel main
            with contextlib.suppress(asyncio.CancelledError):
                await main
        else:
            main.result()
        finished_at = time.perf_counter()
        end = rss_kb()
    finally:
        stopper.cancel()
        await worker.close()
    first = baselines.first_noop_at
    return {
        "variant": args.variant,
        "jobs_complete": worker.jobs_complete,
        "jobs_failed": worker.jobs_failed,
        "jobs_retried": worker.jobs_retried,
        "drain_s": (finished_at - first) if first is not None else None,
        **end,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.bench.worker_proc", description=__doc__)
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--report", required=True, help="Where to write the exit report (JSON).")
    parser.add_argument("--burst", action="store_true", help="Exit once the queue is empty.")
    parser.add_argument("--max-jobs", type=int, default=None, help="Override KOMAS_MAX_JOBS (the naive design: 1).")
    parser.add_argument("--overrides", default="{}", help="Extra arq Worker arguments as JSON (diagnosis only).")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = asyncio.run(serve(args))
    write_json(Path(args.report), result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
