"""Migrations bring an empty database to the head revision, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect

from worker.store.db import Database
from worker.store.migrate import current_revision, head_revision
from worker.store.models import Base


async def test_upgrade_creates_every_table_of_the_models(db: Database) -> None:
    assert await current_revision(db.writer) == head_revision()
    async with db.writer.connect() as conn:
        tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    assert set(Base.metadata.tables) <= tables


async def test_upgrade_is_idempotent(db: Database) -> None:
    from worker.store.migrate import upgrade

    await upgrade(db.writer)
    assert await current_revision(db.writer) == head_revision()
