"""The writer lease on real Redis, and its fencing check in real write transactions (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from worker.apply.faults import is_transient
from worker.runtime.lease import (
    Fence,
    FencedOut,
    LeaseLost,
    WriterLease,
    claim_fence,
    database_key,
    lease_key,
    lease_status,
)
from worker.store.db import Database, transaction
from worker.store.managers.settings import SettingsManager
from worker.store.models import WriterFence

#: Short enough for a test to watch it expire; the worker's default is 10 s.
TTL_S = 0.4


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


@pytest.fixture
def partition() -> str:
    """A partition of this test's own: tests sharing a database (PostgreSQL) never share a lease."""
    return f"test-{uuid.uuid4().hex[:12]}"


def make_lease(client: aioredis.Redis, url: str, partition: str, ttl_s: float = TTL_S) -> WriterLease:
    return WriterLease(client, url, partition=partition, ttl_s=ttl_s)


async def until(condition: object, what: str, timeout: float = 5.0) -> None:
    """Poll an async condition with a deadline."""
    deadline = time.monotonic() + timeout
    while not await condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_acquire_renew_expire_takeover(client: aioredis.Redis, sqlite_url: str, partition: str) -> None:
    first, second = make_lease(client, sqlite_url, partition), make_lease(client, sqlite_url, partition)
    first_token = await first.try_acquire()
    assert first_token > 0
    assert await second.try_acquire() == 0  # held: the second waits
    assert await first.renew()
    assert await first.try_acquire() == first_token  # its own lease (after a Redis outage): same token
    # The first stops renewing (paused, killed): the lease expires and the second takes it with a higher token.
    await until(lambda: _acquired(second), "the lease to expire and be taken over")
    assert second.token > first_token
    assert not await first.renew()  # compare-and-extend: the old holder cannot extend the new one's lease
    await first.release()  # nor delete it
    status = await lease_status(client, sqlite_url, partition)
    assert status["active"]["token"] == second.token
    await second.release()
    assert (await lease_status(client, sqlite_url, partition))["active"] is None


async def _acquired(lease: WriterLease) -> bool:
    return bool(await lease.try_acquire())


async def test_standbys_announce_themselves_and_vanish(client: aioredis.Redis, sqlite_url: str, partition: str) -> None:
    active, standby = make_lease(client, sqlite_url, partition, ttl_s=30), make_lease(client, sqlite_url, partition)
    await active.try_acquire()
    stop = asyncio.Event()
    waiting = asyncio.create_task(standby.wait(stop))
    await until(lambda: _standby_count(client, sqlite_url, partition, 1), "the standby to announce itself")
    status = await lease_status(client, sqlite_url, partition)
    assert status["active"]["token"] == active.token
    assert status["standbys"][0]["host"] == standby.host
    await active.release()  # a stopping worker hands over at once
    assert await asyncio.wait_for(waiting, timeout=5) > active.token
    assert (await lease_status(client, sqlite_url, partition))["standbys"] == []  # the new holder is no standby
    stop.set()
    await standby.release()


async def _standby_count(client: aioredis.Redis, url: str, partition: str, count: int) -> bool:
    return len((await lease_status(client, url, partition))["standbys"]) == count


async def test_a_standby_stops_waiting_when_asked(client: aioredis.Redis, sqlite_url: str, partition: str) -> None:
    active, standby = make_lease(client, sqlite_url, partition, ttl_s=30), make_lease(client, sqlite_url, partition)
    await active.try_acquire()
    stop = asyncio.Event()
    waiting = asyncio.create_task(standby.wait(stop))
    await until(lambda: _standby_count(client, sqlite_url, partition, 1), "the standby")
    stop.set()
    assert await asyncio.wait_for(waiting, timeout=5) == 0
    await active.release()


async def test_keep_reports_a_lost_lease(client: aioredis.Redis, sqlite_url: str, partition: str) -> None:
    lease = make_lease(client, sqlite_url, partition)
    await lease.try_acquire()
    fence = Fence(partition, lease.token)
    reasons: list[str] = []
    keeper = asyncio.create_task(lease.keep(fence, reasons.append))
    await asyncio.sleep(TTL_S * 2)  # several renewals: still held
    assert reasons == []
    assert await client.exists(lease.key)
    await client.delete(lease.key)  # taken from it (or expired while it was paused)
    await asyncio.wait_for(keeper, timeout=5)
    assert len(reasons) == 1
    assert "expired or was taken" in reasons[0]
    # A fencing refusal seen by a transaction makes the keeper give up too, without waiting for a renewal.
    await lease.try_acquire()
    fence = Fence(partition, lease.token, lost=True)
    reasons.clear()
    await asyncio.wait_for(lease.keep(fence, reasons.append), timeout=2)
    assert len(reasons) == 1
    assert "fencing" in reasons[0]
    await lease.release()


async def test_a_stale_holder_cannot_commit_after_the_new_one_wrote(
    db: Database, client: aioredis.Redis, partition: str
) -> None:
    old, new = make_lease(client, db.url, partition), make_lease(client, db.url, partition)
    await old.try_acquire()
    db.fence = old_fence = await claim_fence(old)
    await SettingsManager.set("fence.test", "old")  # the holder writes

    await client.delete(old.key)  # its lease is gone (expired while paused); a standby takes over and writes
    assert await new.try_acquire() > old.token
    db.fence = new_fence = await claim_fence(new)
    await SettingsManager.set("fence.test", "new")

    db.fence = old_fence  # the old holder wakes up and writes, believing it still holds the lease
    with pytest.raises(FencedOut) as refused:
        await SettingsManager.set("fence.test", "stale")
    assert is_transient(refused.value)  # re-enqueued for the new holder, never dead-lettered
    assert old_fence.lost
    assert not new_fence.lost
    db.fence = new_fence
    assert await SettingsManager.get("fence.test") == "new"
    async with transaction() as session:
        assert await session.scalar(select(WriterFence.token).where(WriterFence.name == partition)) == new.token
    await new.release()


async def test_the_sqlite_writer_thread_checks_the_fence(
    sqlite_url: str, client: aioredis.Redis, partition: str
) -> None:
    from worker.store.db import close_db, init_db

    database = init_db(sqlite_url)
    try:
        await database.ensure_schema()
        old, new = make_lease(client, sqlite_url, partition), make_lease(client, sqlite_url, partition)
        await old.try_acquire()
        old_fence = await claim_fence(old)
        await client.delete(old.key)
        await new.try_acquire()
        database.fence = await claim_fence(new)
        writer = database.sqlite_writer()
        assert writer is not None
        assert await writer.run(lambda connection: "committed") == "committed"  # the holder's transaction passes
        database.fence = old_fence
        with pytest.raises(FencedOut):
            await writer.run(lambda connection: "committed")
        await new.release()
    finally:
        await close_db()


async def test_a_new_holder_fences_out_everyone_even_after_redis_lost_the_counter(
    db: Database, client: aioredis.Redis, partition: str
) -> None:
    first = make_lease(client, db.url, partition)
    await first.try_acquire()
    db.fence = await claim_fence(first)
    await SettingsManager.set("fence.test", "first")
    await client.delete(first.key, first.token_key)  # Redis restarted without its data
    second = make_lease(client, db.url, partition)
    await second.try_acquire()
    fence = await claim_fence(second)  # the counter started again at 1; the token is raised above the database's
    assert fence.token > db.fence.token
    await second.release()
    with pytest.raises(LeaseLost):
        await claim_fence(second)  # no longer the holder: no token


def test_database_key_names_the_database_not_the_way_to_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    absolute = f"sqlite+aiosqlite:///{tmp_path}/data/komas.db"
    assert database_key("sqlite+aiosqlite:///data/komas.db") == database_key(absolute)
    assert database_key("sqlite+aiosqlite:///data/other.db") != database_key(absolute)
    assert database_key("postgresql+asyncpg://u:one@h/db") == database_key("postgresql+asyncpg://u:two@h/db")
    assert database_key("postgresql+asyncpg://u@h/db") != database_key("postgresql+asyncpg://u@h/db2")
    assert lease_key(absolute) == f"komas:lease:{database_key(absolute)}:main"
    assert lease_key(absolute, "p1") != lease_key(absolute, "p2")
