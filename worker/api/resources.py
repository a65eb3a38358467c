"""What the API holds for its lifetime: a read-only database engine and a Redis pool for the queue.

The API never opens a writer engine: on SQLite its connections run with `query_only=ON`, on
PostgreSQL in read-only transactions, so a bug here cannot write the database (single writer).
Neither resource connects at start: the API comes up while Redis or the database is still down,
and `/health` says which one is.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from worker.api.render import load_stored_json
from worker.config import Config
from worker.runtime.client import QueuePool, queue_pool
from worker.store.db import create_engine


@dataclass
class Resources:
    config: Config
    reader: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: QueuePool

    @classmethod
    def open(cls, config: Config) -> Resources:
        reader = create_engine(
            config.database_url,
            readonly=True,
            busy_timeout_ms=config.busy_timeout_ms,
            json_deserializer=load_stored_json,  # reads never fail on what is stored (`worker.api.render`)
        )
        pool = queue_pool(config)
        return cls(
            config=config,
            reader=reader,
            sessions=async_sessionmaker(reader, expire_on_commit=False),
            redis=pool,
        )

    async def close(self) -> None:
        await self.redis.aclose()
        await self.reader.dispose()
