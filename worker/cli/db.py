"""`komas db`: the schema."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import typer

from worker.cli._common import fail, missing_sqlite_file
from worker.config import get_config

T = TypeVar("T")

db_app = typer.Typer(
    help="Database schema: upgrade to the latest migration, show the current one.", no_args_is_help=True
)


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Argument("head", help="Target revision (default: the latest)."),
) -> None:
    """Apply pending migrations to KOMAS_DATABASE_URL (a SQLite database that holds data is copied to
    backups/komas-pre-migration-... first, as the worker does).

    Example: [bold]komas db upgrade[/bold]
    """
    from worker.store.db import create_engine
    from worker.store.migrate import current_revision, migrate_to_head, upgrade

    async def run() -> str | None:
        url = get_config().database_url
        engine = create_engine(url)
        try:
            if revision == "head":
                copy = await migrate_to_head(engine, url)
                if copy is not None:
                    typer.echo(f"copied the database to {copy} before migrating it")
            else:
                await upgrade(engine, revision)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    typer.echo(f"database at revision {_run(run)}")


@db_app.command("current")
def db_current() -> None:
    """Show the revision the database is at and the latest one available.

    Example: [bold]komas db current[/bold]
    """
    from worker.store.db import create_engine
    from worker.store.migrate import current_revision, head_revision

    async def run() -> str | None:
        engine = create_engine(get_config().database_url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    # Looking must not leave an empty database file behind (a typo'd path would otherwise "exist").
    current = None if missing_sqlite_file(get_config().database_url) else _run(run)
    typer.echo(f"current: {current or 'none'}  latest: {head_revision()}")


def _run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a database coroutine; an unknown revision or an unreachable database is one line, not a traceback."""
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return asyncio.run(work())
    except CommandError as exc:
        raise fail(str(exc), 2) from None
    except (SQLAlchemyError, OSError) as exc:
        raise fail(f"cannot use the database {get_config().database_url}: {exc}") from None
