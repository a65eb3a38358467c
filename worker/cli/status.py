"""`komas status`: is the system keeping up?"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import typer

from worker.cli._common import DatabaseNotReady, fail, read_database
from worker.config import Config, get_config


def status(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Queue depth, oldest queued age, worker health, the active worker and standbys, dead letters, last applied
    event, database size, and maintenance: each job's last run and next one, the last backup, WAL size.

    Each half is reported even when the other cannot be read (Redis down, database not created yet);
    the exit code is then 1 and the reason is on stderr.

    Example: [bold]komas status --json[/bold]
    """
    config = get_config()
    report: dict[str, dict[str, Any]] = {
        "queue": _queue(config),
        "database": _database(config),
        "maintenance": _maintenance(config),
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print(report)
    errors = [part["error"] for part in report.values() if "error" in part]
    if errors:
        raise fail("; ".join(errors))


def _queue(config: Config) -> dict[str, Any]:
    import redis

    from worker.runtime.status import queue_status

    try:
        return asyncio.run(queue_status(config))
    except (redis.RedisError, OSError) as exc:
        return {"queue": config.queue, "error": f"Redis at {config.redis_url} does not answer: {exc}"}


def _maintenance(config: Config) -> dict[str, Any]:
    from worker.runtime.status import maintenance_status

    return asyncio.run(maintenance_status(config))


def _database(config: Config) -> dict[str, Any]:
    from worker.runtime.status import database_status

    try:
        return read_database(lambda: database_status(config))
    except DatabaseNotReady as exc:
        return {"error": str(exc)}


def _print(report: dict[str, dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    queue, database = report["queue"], report["database"]
    table = Table(show_header=False, title="komas status")
    rows: list[tuple[str, object]] = [("queue", queue.get("queue", "?"))]
    if "error" in queue:
        rows.append(("redis", queue["error"]))
    else:
        age = queue["oldest_age_s"]
        rows += [
            ("queued jobs", queue["depth"]),
            ("oldest queued", "-" if age is None else f"{age:.1f} s"),
            ("worker", queue["worker"] or "no worker heartbeat"),
            ("active writer", _describe(queue["writer"]["active"]) or "none (no worker holds the writer lease)"),
            ("standbys", ", ".join(map(_describe, queue["writer"]["standbys"])) or "none"),
        ]
    if "error" in database:
        rows.append(("database", database["error"]))
    else:
        last, size = database["last_applied"], database["database_bytes"]
        rows += [
            ("applied events", database["applied_events"]),
            ("parked events", database["parked_events"]),
            ("dead letters", database["dead_letters"]),
            ("last applied", "-" if not last else f"{last['type']} {last['event_id']} at {last['at']}"),
            ("database size", "-" if size is None else f"{size:,} bytes"),
        ]
    rows += _maintenance_rows(report["maintenance"])
    for name, value in rows:
        table.add_row(name, str(value))
    Console().print(table)


def _maintenance_rows(maintenance: dict[str, Any]) -> list[tuple[str, object]]:
    backup = maintenance.get("last_backup")
    rows: list[tuple[str, object]] = [
        ("last backup", "none" if not backup else f"{backup['at']}, {backup['bytes']:,} bytes, {backup['file']}"),
        ("WAL size", f"{maintenance['wal_bytes']:,} bytes" if "wal_bytes" in maintenance else "-"),
        ("database file", f"{maintenance['database_bytes']:,} bytes" if "database_bytes" in maintenance else "-"),
        ("dedup window", f"{maintenance['dedup_window_s'] / 86400:g} days"),
    ]
    runs = maintenance.get("last_runs", {})
    for name in sorted(set(runs) | set(maintenance["next_runs"])):
        last = runs.get(name)
        said = "never run" if not last else f"{'ok' if last['ok'] else 'FAILED: ' + str(last['error'])} at {last['at']}"
        upcoming = maintenance["next_runs"].get(name)
        rows.append((f"ops {name}", said + (f"; next {upcoming}" if upcoming else "; not scheduled")))
    return rows


def _describe(worker: dict[str, Any] | None) -> str:
    """A lease holder or standby on one line: host, pid, since when, and the holder's fencing token."""
    if worker is None:
        return ""
    token = f" token {worker['token']}" if "token" in worker else ""
    return f"{worker['host']} pid {worker['pid']} since {worker['since']}{token}"
