"""The fencing token's check in the database: the one rule every write transaction runs first.

A writer holds a token (taken with its lease, see `worker.runtime.lease`); `writer_fences` keeps,
per partition, the highest token that has written. A transaction of a lower token is refused
(`FencedOut`), so a worker whose lease was taken over cannot commit once the new holder has written.
Only SQL here: the lease itself, in Redis, belongs to the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession


class FencedOut(RuntimeError):
    """A write transaction of a worker whose lease was taken over: refused, the work goes back to the queue."""


@dataclass
class Fence:
    """The token this process writes with; `check` is the one fencing rule of every write transaction."""

    partition: str
    token: int
    lost: bool = field(default=False)

    RAISE = text("UPDATE writer_fences SET token = :token WHERE name = :partition AND token <= :token")
    READ = text("SELECT token FROM writer_fences WHERE name = :partition")

    @property
    def params(self) -> dict[str, Any]:
        return {"token": self.token, "partition": self.partition}

    def check_on(self, connection: Connection) -> None:
        """First statement(s) of every write transaction: refuse it (`FencedOut`) if a higher token has written.

        PostgreSQL: `RAISE` (its row lock makes a newer holder's first transaction wait for ours).
        SQLite: `BEGIN IMMEDIATE` holds the database's write lock already, so reading the row is as
        good; it is written only by a holder's first transaction. An UPDATE in every commit cost an
        extra page in the WAL per commit, about a tenth of the writer's throughput.
        """
        if connection.dialect.name != "sqlite":
            self._verify(connection.execute(self.RAISE, self.params).rowcount == 1)
            return
        stored = connection.execute(self.READ, self.params).scalar()
        if stored is not None and stored < self.token:
            connection.execute(self.RAISE, self.params)
            stored = self.token
        self._verify(stored == self.token)

    async def check_in(self, session: AsyncSession) -> None:
        """`check_on` for a transaction of the async engine (`db.transaction`)."""
        await session.run_sync(lambda sync_session: self.check_on(sync_session.connection()))

    def _verify(self, passed: bool) -> None:
        """Refused: a higher token has written (or the partition has no fencing row)."""
        if not passed:
            self.lost = True
            raise FencedOut(f"writer lease of partition {self.partition!r} taken over (token {self.token} is stale)")


_INSERT_FENCE = text("INSERT INTO writer_fences (name, token) VALUES (:partition, 0) ON CONFLICT (name) DO NOTHING")


async def fence_floor(session: AsyncSession, partition: str) -> int:
    """The highest token that has written to `partition` (its fencing row created if new), in `session`'s
    transaction: a new holder's, before its first write, not fenced itself."""
    await session.execute(_INSERT_FENCE, {"partition": partition})
    return int(await session.scalar(Fence.READ, {"partition": partition}) or 0)
