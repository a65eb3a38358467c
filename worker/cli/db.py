"""`komas db`: the schema."""

from __future__ import annotations

import asyncio

import typer

from worker.config import get_config

db_app = typer.Typer(
    help="Database schema: upgrade to the latest migration, show the current one.", no_args_is_help=True
)


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
