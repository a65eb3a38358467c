"""What the benchmark prints: the machine it ran on, then per workload ours | naive | ratio, then the targets."""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.table import Table

METHOD = (
    "Each variant runs on a fresh scratch SQLite database and its own queue on the same Redis; the worker is a "
    "subprocess, started and ready before the clock starts, and events are published while it runs. "
    "events/s = events / (first publish call → last commit). A commit is when the event's id is first visible in "
    "processed_events to a reader polling every few ms (late by at most one poll, never early); latency = that "
    "moment - the start of the publish call carrying the event. Under the throughput workloads everything is "
    "published at once, so latency there is mostly queueing; the latency workload publishes at a fixed rate. "
    "The naive design (one arq job and one ORM transaction per event, through the managers) is measured on a "
    "smaller sample and compared as a rate. arq's no-op rate: jobs queued first, then a burst worker with the "
    "same settings drains them (first job start → queue empty). Worker RSS is the worker process's own (VmRSS at "
    "ready and at the end, VmHWM for the peak)."
)


def machine_info(redis_url: str) -> dict[str, Any]:
    """CPU model, cores, Python, SQLite and Redis versions: a figure means little without them."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    redis_version = "unknown"
    with contextlib.suppress(redis.RedisError, OSError):
        client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            server: dict[str, Any] = client.info("server")  # type: ignore[assignment]  # sync client: a dict
            redis_version = str(server.get("redis_version", "unknown"))
        finally:
            client.close()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "redis": redis_version,
    }


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    return f"{value:,.0f}" if isinstance(value, int | float) else str(value)


def _ratio(ours: Any, other: Any, *, lower_is_better: bool = False) -> str:
    if not ours or not other:
        return "—"
    value = other / ours if lower_is_better else ours / other
    return f"{value:,.1f}x"


def workload_table(result: dict[str, Any]) -> Table:
    """One workload: rows are figures, columns ours | naive | ratio (ours over naive; for times naive over ours)."""
    ours: dict[str, Any] = result["ours"]
    naive: dict[str, Any] = result.get("naive") or {}
    table = Table(title=f"[bold]{result['workload']}[/bold]: {result['description']}", title_justify="left")
    table.add_column("figure")
    table.add_column("ours", justify="right")
    if naive:
        table.add_column(f"naive (max_jobs={naive.get('max_jobs')})", justify="right")
        table.add_column("ours / naive", justify="right")

    def row(label: str, ours_value: Any, naive_value: Any, text: str, naive_text: str, *, lower: bool = False) -> None:
        cells = [label, text]
        if naive:
            cells += [naive_text, _ratio(ours_value, naive_value, lower_is_better=lower)]
        table.add_row(*cells)

    row("events", None, None, _num(ours["events"]), _num(naive.get("events")))
    row("arq jobs", None, None, _num(ours["jobs"]), _num(naive.get("jobs")))
    rate, naive_rate = ours.get("events_per_s"), naive.get("events_per_s")
    row("events/s end to end", rate, naive_rate, _num(rate), _num(naive_rate))
    for key, label in (
        ("elapsed_s", "first publish → last commit, s"),
        ("publish_s", "publishing, s"),
        ("drain_after_publish_s", "last publish ack → last commit, s"),
    ):
        row(label, None, None, _num(ours.get(key), 2), _num(naive.get(key), 2))
    for point in ("p50", "p95", "p99", "max"):
        value, naive_value = ours["latency_ms"].get(point), naive.get("latency_ms", {}).get(point)
        row(f"publish→commit {point}, ms", value, naive_value, _num(value, 1), _num(naive_value, 1), lower=True)
    for key in ("ready", "end", "peak"):
        value, naive_value = ours["worker_rss_mb"][key], naive.get("worker_rss_mb", {}).get(key)
        row(f"worker RSS {key}, MB", value, naive_value, _num(value, 1), _num(naive_value, 1), lower=True)
    noop = result.get("noop")
    if noop:
        cells = ["arq no-op jobs/s (same Redis, same settings)", _num(noop.get("jobs_per_s"))]
        if naive:
            cells += ["", ""]
        table.add_row(*cells)
        ratio = result["ratios"].get("ours_vs_arq_noop")
        cells = ["ours events/s ÷ arq no-op jobs/s", f"{ratio:,.2f}x" if ratio else "—"]
        table.add_row(*(cells + (["", ""] if naive else [])))
    return table


def targets_table(results: list[dict[str, Any]]) -> Table:
    table = Table(title="[bold]targets[/bold] (ratios are measured in this run)", title_justify="left")
    for name, justify in (
        ("workload", "left"),
        ("target", "left"),
        ("measured", "right"),
        ("goal", "right"),
        ("", "center"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for result in results:
        for target in result["targets"]:
            value = target["value"]
            measured = "—" if value is None else f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
            goal = f"{target['comparison']} {target['goal']:,g} {target['unit']}".strip()
            mark = "[green]met[/green]" if target["met"] else "[red]not met[/red]"
            table.add_row(result["workload"], target["target"], f"{measured} {target['unit']}".strip(), goal, mark)
    return table


def print_report(console: Console, machine: dict[str, Any], results: list[dict[str, Any]]) -> None:
    console.print(
        f"[bold]komas bench[/bold] on {machine['cpu']} ({machine['cores']} cores), {machine['os']}, "
        f"Python {machine['python']}, SQLite {machine['sqlite']}, Redis {machine['redis']}"
    )
    for result in results:
        console.print()
        console.print(workload_table(result))
        naive = result.get("naive")
        if naive:
            console.print(
                f"  naive measured on {naive['events']:,} events (ours on {result['ours']['events']:,}) and compared "
                "as a rate; its database holds exactly its events too.",
                style="dim",
            )
    console.print()
    console.print(targets_table(results))
    console.print()
    console.print(f"[dim]How: {METHOD}[/dim]")
