"""The writer lease: one worker writes to a database partition at a time, enforced by a fencing token.

A worker holds a *lease* (a Redis key with a TTL, renewed by compare-and-extend) and a *fencing
token* (a Redis counter that only grows, taken when the lease is). The database remembers the highest
token that has written, one row per partition in `writer_fences`; every write transaction checks
it first (`Fence.check_on`: one statement) and is refused (`FencedOut`) when a higher one has written,
raising it when it is the new holder's first write. So a
worker whose lease was taken over while it was paused or cut off cannot commit once the new holder
has written, whatever it believes: the check is in the database, not in Redis, and costs one
statement per transaction, no Redis round trip.

Keys, in the worker's Redis (`{db}`: 16 hex digits of the SHA-256 of the database URL, password
left out, SQLite paths made absolute, so every worker of one database meets on the same keys):

- `komas:lease:{db}:{partition}`: a hash (holder, host, pid, since, token) that expires after the TTL;
- `komas:lease:{db}:{partition}:token`: the fencing counter, never expires;
- `komas:lease:{db}:{partition}:standby:{holder}`: a waiting worker, expiring a few seconds after it stops.

Partitions: everything here takes a partition name (default "main"). A later issue that splits
events by owner runs one lease per partition (one `WriterLease` each) and writes one `writer_fences`
row per partition (`claim_fence` creates it); a transaction of a partition checks that partition's
row only, so writers of different partitions never fence each other out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from sqlalchemy.engine import URL, make_url

from worker.runtime.lua import lua
from worker.store.db import is_sqlite, transaction
from worker.store.fence import Fence, FencedOut, fence_floor

__all__ = ["Fence", "FencedOut", "LeaseLost", "WriterLease", "claim_fence", "lease_key", "lease_status"]

log = logging.getLogger("komas.lease")

DEFAULT_PARTITION = "main"

#: See `lua/lease_acquire.lua` (its keys, arguments and why).
_ACQUIRE = lua("lease_acquire")
#: See `lua/lease_renew.lua` (its keys, arguments and why).
_RENEW = lua("lease_renew")
#: See `lua/lease_release.lua` (its keys, arguments and why).
_RELEASE = lua("lease_release")
#: See `lua/lease_token_above.lua` (its keys, arguments and why).
_TOKEN_ABOVE = lua("lease_token_above")


def utc_now_text() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class LeaseLost(RuntimeError):
    """The lease went to another worker before this one could start writing."""


def database_key(database_url: str) -> str:
    """16 hex digits naming a database: the same for every worker of it, whatever its password or directory."""
    url = make_url(database_url)
    if is_sqlite(url) and url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        url = url.set(database=str(Path(url.database).resolve()))
    without_password = URL.create(url.drivername, url.username, None, url.host, url.port, url.database, url.query)
    rendered = without_password.render_as_string(hide_password=False)
    return hashlib.sha256(rendered.encode()).hexdigest()[:16]


def lease_key(database_url: str, partition: str = DEFAULT_PARTITION) -> str:
    return f"komas:lease:{database_key(database_url)}:{partition}"


class WriterLease:
    """This process's lease on one database partition (see the module docstring)."""

    def __init__(
        self, client: aioredis.Redis, database_url: str, *, partition: str = DEFAULT_PARTITION, ttl_s: float = 10.0
    ) -> None:
        self.client = client
        self.partition = partition
        self.key = lease_key(database_url, partition)
        self.token_key = self.key + ":token"
        self.standby_key = f"{self.key}:standby:"
        self.ttl_ms = int(ttl_s * 1000)
        self.holder = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.token = 0

    @property
    def renew_interval_s(self) -> float:
        return self.ttl_ms / 3000

    @property
    def standby_poll_s(self) -> float:
        """How often a standby tries to take the lease: a dead holder's is taken within TTL + this."""
        return min(1.0, self.ttl_ms / 4000)

    async def try_acquire(self) -> int:
        """The fencing token if the lease was free or ours already (now ours), else 0."""
        args = (self.holder, self.host, str(os.getpid()), utc_now_text(), str(self.ttl_ms))
        self.token = int(await self.client.eval(_ACQUIRE, 2, self.key, self.token_key, *args))  # type: ignore[misc]
        if self.token:
            await self.client.delete(self.standby_key + self.holder)
        return self.token

    async def renew(self) -> bool:
        """Extend the lease if it is still ours (compare-and-extend)."""
        result = await self.client.eval(_RENEW, 1, self.key, self.holder, str(self.ttl_ms))  # type: ignore[misc]
        return bool(result)

    async def token_above(self, floor: int) -> int:
        """Our token, raised above the database's highest if needed; 0 when the lease is no longer ours."""
        result = await self.client.eval(_TOKEN_ABOVE, 2, self.key, self.token_key, self.holder, str(floor))  # type: ignore[misc]
        self.token = int(result)
        return self.token

    async def release(self) -> None:
        """Give the lease up at once (only if it is ours), and withdraw a standby announcement."""
        await self.client.eval(_RELEASE, 1, self.key, self.holder)  # type: ignore[misc]
        await self.client.delete(self.standby_key + self.holder)

    async def announce_standby(self, since: str) -> None:
        """Tell `komas status` that this worker waits (the key expires a few polls after it stops)."""
        value = json.dumps({"host": self.host, "pid": os.getpid(), "since": since})
        await self.client.set(self.standby_key + self.holder, value, px=int(self.standby_poll_s * 3000) + 1000)

    async def wait(self, stop: asyncio.Event) -> int:
        """Take the lease, waiting as a standby while another worker holds it; 0 if `stop` came first."""
        said, since = False, utc_now_text()
        while not stop.is_set():
            if await self.try_acquire():
                if said:
                    log.info("writer lease %s taken over (token %d): this worker is now active", self.key, self.token)
                return self.token
            await self.announce_standby(since)
            if not said:
                holder = await active_worker(self.client, self.key)
                log.info("another worker holds the writer lease %s (%s): waiting as a standby", self.key, holder)
                said = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.standby_poll_s)
        return 0

    async def keep(self, fence: Fence, on_lost: Callable[[str], None]) -> None:
        """Renew the lease until cancelled; call `on_lost` once when it is gone (expired, taken, or fenced out)."""
        renewed = time.monotonic()
        next_renew = renewed + self.renew_interval_s
        while True:
            await asyncio.sleep(min(0.2, self.renew_interval_s))
            if fence.lost:
                on_lost("a newer holder has written (fencing check refused a transaction)")
                return
            now = time.monotonic()
            if now < next_renew:
                continue
            try:
                still_ours = await self.renew()
            except (redis.exceptions.RedisError, OSError) as exc:
                if now - renewed >= self.ttl_ms / 1000:
                    on_lost(f"could not renew it within its TTL ({exc})")
                    return
                next_renew = now + 0.5  # try again soon: the lease is still ours until its TTL
                continue
            if not still_ours:
                on_lost("the lease expired or was taken by another worker")
                return
            renewed = now
            next_renew = now + self.renew_interval_s


async def claim_fence(lease: WriterLease) -> Fence:
    """Our partition's fencing row (created if new) and a token above the highest that has written there.

    Call before the first write of a new holder, outside any fenced transaction.
    """
    async with transaction() as session:
        floor = await fence_floor(session, lease.partition)
    token = await lease.token_above(floor)
    if not token:
        raise LeaseLost(f"writer lease {lease.key} lost before the first write")
    return Fence(lease.partition, token)


async def active_worker(client: aioredis.Redis, key: str) -> dict[str, Any] | None:
    """The lease holder's host, pid, since and token (None when no worker holds it)."""
    fields = await client.hgetall(key)  # type: ignore[misc]
    if not fields:
        return None
    holder = {k.decode(): v.decode() for k, v in fields.items()}
    return {"host": holder["host"], "pid": int(holder["pid"]), "since": holder["since"], "token": int(holder["token"])}


async def standbys(client: aioredis.Redis, key: str) -> list[dict[str, Any]]:
    """The workers waiting for this lease (each announces itself with a short-TTL key)."""
    found = []
    async for standby_key in client.scan_iter(match=key + ":standby:*", count=100):
        value = await client.get(standby_key)
        if value:
            found.append(json.loads(value))
    return sorted(found, key=lambda item: item["since"])


async def lease_status(client: aioredis.Redis, database_url: str, partition: str = DEFAULT_PARTITION) -> dict[str, Any]:
    key = lease_key(database_url, partition)
    return {"partition": partition, "active": await active_worker(client, key), "standbys": await standbys(client, key)}
