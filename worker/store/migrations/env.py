"""Alembic environment: runs on the connection `worker.store.migrate` hands in (async engine, sync shim)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from worker.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `komas db upgrade`, which passes the connection")
run_on(connection)
