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
OPS_METHOD = (
    "One scratch SQLite database is filled before the worker starts with set-based SQL inserts (not published: "
    "the rows as the worker would have written them, processed_events plus, in runs of 1,000, backtest results "
    "and signals, all applied a day ago); then one worker subprocess with the default settings, except a dedup "
    "window of 600 s (job TTL 120 s + park timeout 60 s) so the filled rows are purgeable, and no maintenance "
    "schedule (only the operation under test runs). Operations are `maintenance` jobs on the worker's queue, as "
    "`komas ops` enqueues them; an operation's window is its job's start → finish as arq records it. Backup: "
    "an idle backup first, then the bulk workload (publish_many of 1,000) undisturbed: events / (first publish "
    "→ last commit) is the baseline; then bulk again with the backup enqueued as publishing starts and a backlog "
    "kept queued until it answers (events built before, as many as the idle backup's duration x the baseline "
    "rate x 3 allows); the rate during the backup = events seen committed in its window / the window. Purge: "
    "the latency workload (single signal creates, open loop at a fixed rate) without, then during a purge of the "
    "filled rows, publishing for as long as the purge runs; latency = first visible in processed_events - start "
    "of the publish call, for the events published inside the purge's window. Commits are seen by a reader "
    "polling processed_events every few ms (late by at most one poll)."
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
            table.add_row(result["workload"], target["target"], *_target_cells(target))
    return table


def _target_cells(target: dict[str, Any]) -> tuple[str, str, str]:
    """Measured, goal, met: numbers with their unit, or the texts a target gives for them (ops' checks)."""
    value = target["value"]
    measured = "—" if value is None else f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    measured = target.get("measured_text") or f"{measured} {target['unit']}".strip()
    goal = target.get("goal_text") or f"{target['comparison']} {target['goal']:,g} {target['unit']}".strip()
    mark = "[green]met[/green]" if target["met"] else "[red]not met[/red]"
    return measured, goal, mark


def _mb(value: Any) -> str:
    return "—" if value is None else f"{value / 1_000_000:,.0f} MB"


def _ms(latency: dict[str, Any], point: str) -> str:
    value = latency.get(point)
    return "—" if value is None else f"{value:,.1f}"


def ops_tables(result: dict[str, Any]) -> list[Table]:
    """`komas bench ops`: each operation's figures beside the same worker's without it, with the goals."""
    targets = {target["target"]: target for target in result["targets"]}

    def table(title: str) -> Table:
        made = Table(title=title, title_justify="left")
        for name, justify in (
            ("figure", "left"),
            ("baseline (no operation)", "right"),
            ("during the operation", "right"),
            ("during / baseline", "right"),
            ("goal", "right"),
            ("", "center"),
        ):
            made.add_column(name, justify=justify)  # type: ignore[arg-type]
        return made

    def goal(name: str) -> list[str]:
        target = next((target for key, target in targets.items() if key.startswith(name)), None)
        if target is None:
            return ["", ""]
        _measured, goal_text, mark = _target_cells(target)
        return [goal_text, mark]

    database, backup, purge = result["database"], result["backup"], result["purge"]
    idle, loaded = backup["idle"], backup["under_load"]
    first = table(
        f"[bold]ops · backup[/bold] during bulk, on {database['rows']:,} events "
        f"({_mb(database.get('bytes'))}, filled by SQL)"
    )
    first.add_row(
        "backup duration, s",
        _num(idle["seconds"], 2),
        _num(loaded["seconds"], 2),
        _ratio(loaded["seconds"], idle["seconds"]),
        "",
        "",
    )
    first.add_row(
        "backup verified",
        f"ok={idle['ok']}, {idle['check_kind']}: {idle['check']}",
        f"ok={loaded['ok']}, {loaded['check_kind']}: {loaded['check']}",
        "",
        *goal("backup under load"),
    )
    first.add_row("backup file", _mb(idle["bytes"]), _mb(loaded["bytes"]), "", "", "")
    during = backup["during"]
    share = backup["share_pct"]
    first.add_row(
        "worker events/s (bulk)",
        _num(backup["baseline"]["events_per_s"]),
        _num(during["events_per_s"]),
        "—" if share is None else f"{share:,.1f}%",
        *goal("worker events/s during the backup"),
    )
    first.add_row(
        "events measured",
        f"{backup['baseline']['events']:,} (first publish → last commit)",
        f"{during['events_in_window']:,} in {during['window_s']:,.2f} s"
        + ("" if during["load_covered_backup"] else " (the load ended first)"),
        "",
        "",
        "",
    )
    second = table(
        f"[bold]ops · purge[/bold] during the latency workload at {purge['rate']:g} events/s "
        f"({purge['rows_purgeable']:,} rows older than the dedup window)"
    )
    second.add_row("rows deleted", "", f"{purge['rows_deleted'] or 0:,}", "", *goal("purge deleted"))
    second.add_row("purge duration, s", "", _num(purge["seconds"], 2), "", "", "")
    base_latency, latency = purge["baseline"]["latency_ms"], purge["during"]["latency_ms"]
    second.add_row(
        "events measured",
        f"{purge['baseline']['events']:,}",
        f"{purge['during']['events_in_window']:,} published during the purge",
        "",
        "",
        "",
    )
    for point in ("p50", "p95", "p99", "max"):
        cells = goal("publish→commit p99") if point == "p99" else ["", ""]
        second.add_row(
            f"publish→commit {point}, ms",
            _ms(base_latency, point),
            _ms(latency, point),
            _ratio(latency.get(point), base_latency.get(point)),
            *cells,
        )
    return [first, second]


def print_report(console: Console, machine: dict[str, Any], results: list[dict[str, Any]]) -> None:
    console.print(
        f"[bold]komas bench[/bold] on {machine['cpu']} ({machine['cores']} cores), {machine['os']}, "
        f"Python {machine['python']}, SQLite {machine['sqlite']}, Redis {machine['redis']}"
    )
    for result in results:
        console.print()
        if result["workload"] == "ops":
            for table in ops_tables(result):
                console.print(table)
            console.print(
                f"  worker: synchronous={result['worker']['synchronous']}, peak RSS "
                f"{result['worker']['peak_rss_mb']:,.0f} MB, {result['worker']['jobs_failed']} failed jobs; the "
                f"database filled in {result['database']['fill_s']:,.0f} s by SQL, not by publishing.",
                style="dim",
            )
            continue
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
    if any(result["workload"] != "ops" for result in results):
        console.print(f"[dim]How: {METHOD}[/dim]")
    if any(result["workload"] == "ops" for result in results):
        console.print(f"[dim]How (ops): {OPS_METHOD}[/dim]")
