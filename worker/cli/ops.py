"""`komas ops`: the maintenance jobs, run by the worker (the single writer) in order with the events.

Each command enqueues the job, waits for its report (showing the time it has taken so far), prints
the report as JSON and exits 0 when it is ok, 1 when the job refused or failed (the reason on
stderr), 3 when no worker answered in time (the job stays queued and runs when a worker does).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import typer

from worker.cli._common import fail
from worker.cli.restore import restore_command
from worker.config import get_config

ops_app = typer.Typer(
    help="Maintenance: backup, checkpoint, optimize, vacuum, integrity, purge, rebuild-stats (run by the worker).",
    no_args_is_help=True,
)

#: Exit code when no worker answered within --timeout (the job is queued and runs later).
NOT_ANSWERED = 3
TIMEOUT = typer.Option(3600.0, "--timeout", min=1, help="Seconds to wait for the worker's report.")


async def _run_and_wait(name: str, options: dict[str, Any], timeout: float) -> dict[str, Any]:
    """`call_worker`, saying on a terminal how long the job has been running meanwhile."""
    from worker.runtime.client import call_worker
    from worker.runtime.maintenance_jobs import MAINTENANCE_JOB

    waiting = asyncio.ensure_future(call_worker(get_config(), MAINTENANCE_JOB, name, options, timeout=timeout))
    started = time.monotonic()
    interactive = sys.stderr.isatty()
    while not waiting.done():
        await asyncio.wait({waiting}, timeout=1.0)
        if interactive and not waiting.done():
            typer.echo(f"\r{name}: running for {time.monotonic() - started:.0f}s ...", err=True, nl=False)
    if interactive:
        typer.echo("\r" + " " * 40 + "\r", err=True, nl=False)
    result: dict[str, Any] = waiting.result()
    return result


def run_op(name: str, options: dict[str, Any], timeout: float) -> None:
    """Enqueue `name`, wait, print the report, and exit as the module says."""
    from worker.runtime.client import WorkerDidNotAnswer

    try:
        result = asyncio.run(_run_and_wait(name, options, timeout))
    except WorkerDidNotAnswer as exc:
        raise fail(str(exc), NOT_ANSWERED) from None
    except (OSError, ConnectionError) as exc:
        raise fail(f"cannot reach Redis at {get_config().redis_url}: {exc}") from None
    typer.echo(json.dumps(result, indent=2))
    if not result.get("ok"):
        raise fail(f"{name}: {result.get('error') or 'not ok (see the report above)'}")


@ops_app.command()
def backup(
    full: bool = typer.Option(
        False, "--full", help="Check the backup with integrity_check (slower) instead of quick_check."
    ),
    keep: int | None = typer.Option(None, "--keep", min=1, help="Backups to keep [default: KOMAS_BACKUP_KEEP, 7]."),
    timeout: float = TIMEOUT,
) -> None:
    """An online, consistent backup of the SQLite database, verified, into KOMAS_BACKUP_DIR (default data/backups).

    Its schema revision, size, row counts and last applied event are written next to it (.json).
    On PostgreSQL it does nothing and says to use pg_dump.

    Example: [bold]komas ops backup --keep 14[/bold]
    """
    run_op("backup", {"full": full, "keep": keep}, timeout)


@ops_app.command()
def checkpoint(timeout: float = TIMEOUT) -> None:
    """Checkpoint the WAL into the database and truncate it (reports its size before and after).

    Example: [bold]komas ops checkpoint[/bold]
    """
    run_op("checkpoint", {}, timeout)


@ops_app.command()
def optimize(timeout: float = TIMEOUT) -> None:
    """PRAGMA optimize: refresh the query planner's statistics where they went stale.

    Example: [bold]komas ops optimize[/bold]
    """
    run_op("optimize", {}, timeout)


@ops_app.command()
def vacuum(timeout: float = TIMEOUT) -> None:
    """A full VACUUM: rewrite the database compactly (needs free disk for a copy; writes wait meanwhile).

    Example: [bold]komas ops vacuum --timeout 7200[/bold]
    """
    run_op("vacuum", {}, timeout)


@ops_app.command()
def integrity(
    full: bool = typer.Option(False, "--full", help="PRAGMA integrity_check instead of quick_check."),
    timeout: float = TIMEOUT,
) -> None:
    """Check the database file; changes nothing. Exit 1 when it is not ok.

    Example: [bold]komas ops integrity --full[/bold]
    """
    run_op("integrity", {"full": full}, timeout)


@ops_app.command()
def purge(
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be deleted; delete nothing."),
    timeout: float = TIMEOUT,
) -> None:
    """Retention: processed_events older than KOMAS_DEDUP_WINDOW_S, replayed dead letters older than
    KOMAS_RETENTION_DEAD_LETTERS_DAYS, closed signals older than KOMAS_RETENTION_SIGNALS_DAYS (off by default).

    Deletes in small transactions while events keep flowing; never touches an open signal.

    Example: [bold]komas ops purge --dry-run[/bold]
    """
    run_op("purge", {"dry_run": dry_run}, timeout)


@ops_app.command("rebuild-stats")
def rebuild_stats(
    check: bool = typer.Option(False, "--check", help="Only report the bots whose counters differ."),
    timeout: float = TIMEOUT,
) -> None:
    """Recompute every bot's counters from its closed signals with the worker's rules; fix the ones that differ.

    Reports each bot whose stored counters differed, before and after.

    Example: [bold]komas ops rebuild-stats --check[/bold]
    """
    run_op("rebuild-stats", {"check": check}, timeout)


ops_app.command("restore")(restore_command)
