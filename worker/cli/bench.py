"""`komas bench`: our worker and the naive design, measured side by side in the same run."""

from __future__ import annotations

import asyncio
import json
from enum import StrEnum
from typing import Any

import typer

from worker.cli._common import fail
from worker.config import get_config


class Workload(StrEnum):
    bulk = "bulk"
    lifecycle = "lifecycle"
    fan_in = "fan-in"
    latency = "latency"
    memory = "memory"
    ops = "ops"
    all = "all"


def _overrides(pairs: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise fail(f"--worker-option expects KEY=VALUE, got {pair!r}", 2)
        try:
            found[key] = json.loads(value)
        except json.JSONDecodeError:
            found[key] = value
    return found


def bench(
    workload: Workload = typer.Argument(Workload.all, help="What to run; `all` is every workload but memory and ops."),
    events: int = typer.Option(
        None,
        "--events",
        "-n",
        min=1,
        help="Events for our worker (default per workload: bulk 100,000, "
        "lifecycle 20,000, fan-in 20,000, latency 2,500, memory 1,000,000; ops: bulk events of each phase, "
        "100,000, and at most 2,500 latency events before the purge).",
    ),
    rows: int = typer.Option(
        1_000_000, "--rows", min=1, help="ops: events the database holds (filled by SQL) before the worker starts."
    ),
    naive_events: int = typer.Option(
        1_000,
        "--naive-events",
        min=0,
        help="Events for the naive design (~90/s: a smaller sample, compared as a rate); 0 skips it.",
    ),
    naive_max_jobs: int = typer.Option(1, "--naive-max-jobs", min=1, help="max_jobs of the naive worker."),
    noop_jobs: int = typer.Option(3_000, "--noop-jobs", min=0, help="No-op jobs for arq's own rate (fan-in)."),
    rate: float = typer.Option(500.0, "--rate", min=1, help="Events/s offered by the latency workload."),
    linger_ms: float = typer.Option(
        5.0, "--linger-ms", min=0, help="Fan-in: LingeringPublisher linger; 0: one job per event."
    ),
    seed: int = typer.Option(42, "--seed", help="Seed of the event generators."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout (progress stays on stderr)."),
    worker_option: list[str] = typer.Option(
        [],
        "--worker-option",
        help="Extra arq Worker argument KEY=JSON for every variant (diagnosis), e.g. poll_delay=0.01.",
    ),
    stall_timeout: float = typer.Option(
        60.0, "--stall-timeout", min=1, help="Fail a run when nothing is applied for this long."
    ),
) -> None:
    """Publish a workload against a real worker on a scratch database; print ours beside the naive design.

    Needs Redis (KOMAS_REDIS_URL) and touches nothing else: each run has its own temporary database and
    queue. The worker runs as a subprocess (its RSS is measured) and is ready before the clock starts.
    [bold]all[/bold] (bulk, lifecycle, fan-in, latency) takes a minute or two on two cores; the naive
    design is measured on --naive-events and compared as a rate. [bold]memory[/bold] pushes one million
    events through the worker (minutes) and runs only when asked. [bold]ops[/bold] fills a database with
    --rows events, then measures a backup during the bulk workload and a purge during the latency
    workload against the same worker without them (a few minutes; runs only when asked).

    Examples: [bold]komas bench[/bold], [bold]komas bench bulk --events 20000 --json[/bold],
    [bold]komas bench memory[/bold], [bold]komas bench ops[/bold]
    """
    from rich.console import Console

    from worker.bench.harness import BenchError, BenchOptions
    from worker.bench.report import machine_info, print_report
    from worker.bench.runs import DEFAULT_EVENTS
    from worker.bench.workloads import WORKLOADS

    config = get_config()
    machine = machine_info(config.redis_url)
    if machine["redis"] == "unknown":
        raise fail(f"Redis at {config.redis_url} does not answer (set KOMAS_REDIS_URL)")
    options = BenchOptions(
        redis_url=config.redis_url,
        seed=seed,
        naive_max_jobs=naive_max_jobs,
        linger_ms=linger_ms,
        rate=rate,
        stall_timeout_s=stall_timeout,
        worker_overrides=_overrides(worker_option),
    )
    names = list(WORKLOADS) if workload is Workload.all else [workload.value]
    err = Console(stderr=True)
    try:
        results = asyncio.run(_run(names, events, naive_events, noop_jobs, rows, options, err, DEFAULT_EVENTS))
    except BenchError as exc:
        raise fail(f"bench failed: {exc}") from None
    if as_json:
        typer.echo(json.dumps({"machine": machine, "options": _options_json(options), "workloads": results}, indent=2))
    else:
        print_report(Console(), machine, results)


def _options_json(options: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(options) | {"redis_url": "(configured)"}


async def _run(
    names: list[str],
    events: int | None,
    naive_events: int,
    noop_jobs: int,
    rows: int,
    options: Any,
    console: Any,
    defaults: dict[str, int],
) -> list[dict[str, Any]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from worker.bench.runs import Sizes, run_workload

    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:

        def factory(label: str, total: int) -> Any:
            task = progress.add_task(label, total=total)

            def update(done: int, all_: int) -> None:
                progress.update(task, completed=min(done, all_), total=all_)

            return update

        results = []
        for name in names:
            sizes = Sizes(events=events or defaults[name], naive_events=naive_events, noop_jobs=noop_jobs, rows=rows)
            results.append(await run_workload(name, sizes, options, factory))
    return results
