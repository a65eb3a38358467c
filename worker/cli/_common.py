"""Helpers shared by the commands: logging, a read-only database session, asking the worker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from worker.config import get_config

T = TypeVar("T")


def setup_logging() -> None:
    from worker.logs import configure

    config = get_config()
    configure(config.log_level, config.log_format)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `komas: message` on stderr and return the Exit to raise."""
    typer.echo(f"komas: {message}", err=True)
    return typer.Exit(code)


def missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL when it does not exist yet: reading it would create an empty database there."""
    from sqlalchemy.engine import make_url

    from worker.store.db import is_sqlite

    database = make_url(url).database
    if not is_sqlite(url) or not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path


class DatabaseNotReady(Exception):
    """The database cannot be read yet (no file, no schema, unreachable); the message says what to do."""


def read_database(work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` with the managers opened on KOMAS_DATABASE_URL (reads only, no migration, no file created)."""
    from sqlalchemy.exc import SQLAlchemyError

    from worker.store.db import close_db, init_db
    from worker.store.migrate import current_revision

    url = get_config().database_url
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise DatabaseNotReady(f"no database at {missing} yet: start the worker or run `komas db upgrade`")

    async def run() -> T:
        database = init_db(url, migrate=False)
        try:
            if await current_revision(database.reader) is None:
                raise DatabaseNotReady(
                    f"the database {url} has no schema yet: start the worker or run `komas db upgrade`"
                )
            return await work()
        finally:
            await close_db()

    try:
        return asyncio.run(run())
    except (SQLAlchemyError, OSError) as exc:
        raise DatabaseNotReady(f"cannot read the database {url}: {exc}") from None


def with_database(work: Callable[[], Awaitable[T]]) -> T:
    """`read_database`, ending the command with exit 1 and the reason when the database is not ready."""
    try:
        return read_database(work)
    except DatabaseNotReady as exc:
        raise fail(str(exc)) from None


def ask_worker(function: str, *args: Any, timeout: float) -> Any:
    """Have the worker (the single writer) run an operator job; exit 1 with the reason if it cannot."""
    from worker.runtime.client import WorkerDidNotAnswer, call_worker

    try:
        return asyncio.run(call_worker(get_config(), function, *args, timeout=timeout))
    except WorkerDidNotAnswer as exc:
        raise fail(str(exc)) from None
    except (OSError, ConnectionError) as exc:
        raise fail(f"cannot reach Redis at {get_config().redis_url}: {exc}") from None
