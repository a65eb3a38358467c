"""The `komas` command line: run the worker, manage the schema.

Typer gives every command a `--help` built from these docstrings and type-checked options.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import typer

from worker.config import ConfigError, get_config

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
    from worker.runner import build_worker

    _setup_logging()
    config = get_config()
    typer.echo(f"komas worker: queue {config.queue!r}, database {config.database_url}", err=True)
    build_worker(config, burst=burst).run()


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


def main() -> None:
    """Console entry point: configuration errors end in one clear line and exit code 2."""
    try:
        get_config()
    except ConfigError as exc:
        typer.echo(f"komas: {exc}", err=True)
        raise SystemExit(2) from None
    app()
