"""Helpers shared by the commands: logging, a read-only database session, asking the worker."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from worker.config import get_config

T = TypeVar("T")


def setup_logging() -> None:
    logging.basicConfig(
        level=get_config().log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `komas: message` on stderr and return the Exit to raise."""
    typer.echo(f"komas: {message}", err=True)
    return typer.Exit(code)


def missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL when it does not exist yet: reading it would create an empty database there."""
    from sqlalchemy.engine import make_url

    from worker.db import is_sqlite

    database = make_url(url).database
    if not is_sqlite(url) or not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path


def with_database(work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` with the managers opened on KOMAS_DATABASE_URL (reads only, no migration)."""
    from worker.db import close_db, init_db
    from worker.migrate import current_revision

    async def run() -> T:
        url = get_config().database_url
        database = init_db(url, migrate=False)
        try:
            if await current_revision(database.writer) is None:
                raise fail(f"the database {url} has no schema yet: start the worker or run `komas db upgrade`")
            return await work()
        finally:
            await close_db()

    return asyncio.run(run())


def ask_worker(function: str, *args: Any, timeout: float) -> Any:
    """Have the worker (the single writer) run an operator job; exit 1 with the reason if it cannot."""
    from worker.client import WorkerDidNotAnswer, call_worker

    try:
        return asyncio.run(call_worker(get_config(), function, *args, timeout=timeout))
    except WorkerDidNotAnswer as exc:
        raise fail(str(exc)) from None
    except (OSError, ConnectionError) as exc:
        raise fail(f"cannot reach Redis at {get_config().redis_url}: {exc}") from None
