"""Schema migrations (Alembic) driven from code, so `komas db upgrade` and the worker share one path."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from worker.store.engines import sqlite_file
from worker.store.safety import pre_migration_backup

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` in one transaction."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None when never migrated)."""
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


def _schema_state(connection: Connection, head: str | None) -> tuple[str | None, bool]:
    """The revision, and whether the database holds any table (only looked at when not at head)."""
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision == head:
        return revision, True
    return revision, bool(inspect(connection).get_table_names())


async def migrate_to_head(engine: AsyncEngine, url: str) -> Path | None:
    """Bring the database to head; a SQLite database that holds tables is first copied to
    `backups/komas-pre-migration-...` next to it (see `worker.store.safety`). Returns that copy, if any.

    At head this reads the revision and nothing else.
    """
    head = head_revision()
    async with engine.connect() as conn:
        revision, has_tables = await conn.run_sync(lambda sync: _schema_state(sync, head))
    if revision == head:
        return None
    database = sqlite_file(url)
    copy = None
    if database is not None and has_tables:
        copy = await asyncio.to_thread(pre_migration_backup, database, revision, head)
    await upgrade(engine)
    return copy


async def autogenerate(engine: AsyncEngine, message: str) -> None:
    """Write a new revision from the difference between the models and the database (developers)."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.revision(alembic_config(sync), message=message, autogenerate=True))
