"""Shared fixtures: real Redis, real SQLite files, a real PostgreSQL database.

A service that does not answer skips only the tests that need it, with the reason in the report.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.services import POSTGRES_ADMIN_URL, REDIS_URL, redis_answers
from worker.store.db import Database, close_db, init_db
from worker.store.models import Base

# Tests must not read the developer's own environment (a KOMAS_DATABASE_URL pointing at real data).
for _name in [name for name in os.environ if name.startswith("KOMAS_") and not name.startswith("KOMAS_TEST_")]:
    del os.environ[_name]


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not redis_answers():
        pytest.skip(f"Redis does not answer at {REDIS_URL} (start it: see README, 'Running the tests')")
    return REDIS_URL


@pytest.fixture
def queue_name() -> str:
    """A queue of this test's own on the shared Redis, so tests never see each other's jobs."""
    return f"komas:test:{uuid.uuid4().hex}"


async def _create_postgres_database() -> str:
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"komas_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def _drop_postgres_database(url: str) -> None:
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test session's own, dropped at the end."""
    try:
        url = asyncio.run(_create_postgres_database())
    except Exception as exc:  # connection refused, auth, ...
        pytest.skip(f"PostgreSQL does not answer at {POSTGRES_ADMIN_URL}: {exc}")
    yield url
    asyncio.run(_drop_postgres_database(url))


async def _truncate_all(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """The same test on a fresh SQLite file and on (emptied) PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/komas.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    """A fresh SQLite file, for tests about SQLite itself or the worker's default."""
    return f"sqlite+aiosqlite:///{tmp_path}/komas.db"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The managers' global database, migrated and empty."""
    database = init_db(database_url)
    await database.ensure_schema()
    if database.writer.dialect.name == "postgresql":
        await _truncate_all(database_url)
    yield database
    await close_db()
