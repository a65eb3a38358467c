"""`komas status`: is the system keeping up?"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import typer

from worker.cli._common import fail, with_database
from worker.config import get_config


def status(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Queue depth, oldest queued age, worker health, dead letters, last applied event, database size.

    Example: [bold]komas status --json[/bold]
    """
    import redis

    from worker.status import database_status, queue_status

    config = get_config()
    report: dict[str, Any] = {"database": with_database(lambda: database_status(config))}
    try:
        report["queue"] = asyncio.run(queue_status(config))
    except (redis.RedisError, OSError) as exc:
        report["queue"] = {"error": f"Redis at {config.redis_url} does not answer: {exc}"}
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print(report)
    if "error" in report["queue"]:
        raise fail(report["queue"]["error"])


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    queue, database = report["queue"], report["database"]
    table = Table(show_header=False, title="komas status")
    rows = [
        ("queue", queue.get("queue", "?")),
        ("queued jobs", queue.get("depth", "?")),
        ("oldest queued", "-" if queue.get("oldest_age_s") is None else f"{queue['oldest_age_s']:.1f} s"),
        ("worker", queue.get("worker") or "no worker heartbeat"),
        ("applied events", database["applied_events"]),
        ("parked events", database["parked_events"]),
        ("dead letters", database["dead_letters"]),
        ("last applied", "-" if not database["last_applied"] else " ".join(database["last_applied"].values())),
        ("database size", "-" if database["database_bytes"] is None else f"{database['database_bytes']:,} bytes"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    Console().print(table)
