"""The `komas` command line: run the worker, manage the schema.

Typer gives every command a `--help` built from these docstrings and type-checked options.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from events.wire import dumps
from worker.config import ConfigError, get_config

T = TypeVar("T")

app = typer.Typer(
    name="komas",
    help="Komas persistence core: apply trading events from Redis to the database, and operate it.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
db_app = typer.Typer(
    help="Database schema: upgrade to the latest migration, show the current one.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
dlq_app = typer.Typer(
    help="Dead letters: events that could not be applied, with payload and reason.", no_args_is_help=True
)
app.add_typer(dlq_app, name="dlq")


def _setup_logging() -> None:
    logging.basicConfig(
        level=get_config().log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command()
def worker(
    burst: bool = typer.Option(False, "--burst", help="Drain the queue, then exit (for scripts and tests)."),
) -> None:
    """Run the single writer: take event jobs from the queue and apply them.

    Example: [bold]KOMAS_REDIS_URL=redis://127.0.0.1:6379/0 komas worker[/bold]
    """
    _setup_logging()
    config = get_config()
    typer.echo(f"komas worker: queue {config.queue!r}, database {config.database_url}", err=True)
    from worker.runner import run_forever

    asyncio.run(run_forever(config, burst=burst))


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Argument("head", help="Target revision (default: the latest)."),
) -> None:
    """Apply pending migrations to KOMAS_DATABASE_URL.

    Example: [bold]komas db upgrade[/bold]
    """
    from worker.db import create_engine
    from worker.migrate import current_revision, upgrade

    async def run() -> str | None:
        engine = create_engine(get_config().database_url)
        try:
            await upgrade(engine, revision)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    typer.echo(f"database at revision {asyncio.run(run())}")


@db_app.command("current")
def db_current() -> None:
    """Show the revision the database is at and the latest one available.

    Example: [bold]komas db current[/bold]
    """
    from worker.db import create_engine
    from worker.migrate import current_revision, head_revision

    async def run() -> str | None:
        engine = create_engine(get_config().database_url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    typer.echo(f"current: {asyncio.run(run()) or 'none'}  latest: {head_revision()}")


def _with_database(work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` with the managers opened on KOMAS_DATABASE_URL (reads only)."""
    from worker.db import close_db, init_db

    async def run() -> T:
        init_db(get_config().database_url)
        try:
            return await work()
        finally:
            await close_db()

    return asyncio.run(run())


def _ask_worker(function: str, *args: Any, timeout: float) -> Any:
    """Have the worker (the single writer) run an operator job; exit 1 with the reason if it cannot."""
    from worker.client import WorkerDidNotAnswer, call_worker

    try:
        return asyncio.run(call_worker(get_config(), function, *args, timeout=timeout))
    except WorkerDidNotAnswer as exc:
        typer.echo(f"komas: {exc}", err=True)
        raise typer.Exit(1) from None
    except (OSError, ConnectionError) as exc:
        typer.echo(f"komas: cannot reach Redis at {get_config().redis_url}: {exc}", err=True)
        raise typer.Exit(1) from None


@dlq_app.command("list")
def dlq_list(
    include_replayed: bool = typer.Option(False, "--all", help="Also show dead letters already replayed."),
    limit: int = typer.Option(50, min=1, help="Show at most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
) -> None:
    """List dead letters, newest first.

    Example: [bold]komas dlq list --limit 20[/bold]
    """
    from rich.console import Console
    from rich.table import Table

    from worker.managers import DeadLetterManager

    letters = _with_database(lambda: DeadLetterManager.list_all(include_replayed=include_replayed, limit=limit))
    if as_json:
        for letter in letters:
            typer.echo(dumps(letter.to_dict()).decode())
        return
    table = Table(title=f"{len(letters)} dead letter(s)")
    for column in ("id", "event", "type", "attempts", "last seen", "replayed", "reason"):
        table.add_column(column)
    for letter in letters:
        table.add_row(
            str(letter.id),
            letter.event_id or "-",
            letter.event_type or "-",
            str(letter.attempts),
            letter.last_seen_at.isoformat(timespec="seconds"),
            letter.replayed_at.isoformat(timespec="seconds") if letter.replayed_at else "",
            letter.reason[:120],
        )
    Console().print(table)


@dlq_app.command("replay")
def dlq_replay(
    letter_ids: list[int] = typer.Argument(None, help="Ids of the dead letters to replay."),
    replay_all: bool = typer.Option(False, "--all", help="Replay every dead letter not replayed yet."),
    timeout: float = typer.Option(30.0, help="Seconds to wait for the worker's answer."),
) -> None:
    """Publish dead letters again; an event already applied stays a no-op.

    Example: [bold]komas dlq replay 12 13[/bold] or [bold]komas dlq replay --all[/bold]
    """
    if bool(letter_ids) == replay_all:
        typer.echo("komas: give dead-letter ids or --all (not both)", err=True)
        raise typer.Exit(2)
    result = _ask_worker("dlq_replay", None if replay_all else list(letter_ids), timeout=timeout)
    typer.echo(f"replayed: {result['replayed']}")
    for skipped in result["skipped"]:
        typer.echo(f"skipped {skipped['id']}: {skipped['reason']}")
    if result["missing"]:
        typer.echo(f"no such dead letter: {result['missing']}", err=True)
        raise typer.Exit(1)


@dlq_app.command("drop")
def dlq_drop(
    letter_id: int = typer.Argument(..., help="Id of the dead letter to delete."),
    timeout: float = typer.Option(30.0, help="Seconds to wait for the worker's answer."),
) -> None:
    """Delete a dead letter for good.

    Example: [bold]komas dlq drop 12[/bold]
    """
    result = _ask_worker("dlq_drop", letter_id, timeout=timeout)
    if not result["dropped"]:
        typer.echo(f"komas: no dead letter {letter_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"dropped dead letter {letter_id}")


def main() -> None:
    """Console entry point: configuration errors end in one clear line and exit code 2."""
    try:
        get_config()
    except ConfigError as exc:
        typer.echo(f"komas: {exc}", err=True)
        raise SystemExit(2) from None
    app()
