"""When Redis fails during a write, the answer says whether the write may still apply and how to retry it.

Each test has a Redis of its own (`redis-server`, append-only with fsync always) and makes it fail at
the moment that matters: a proxy that passes the job to Redis and then drops the connection before
the reply, or `kill -9` while the API waits for the worker. The write then applies (a worker runs),
and the retry with the `Idempotency-Key` the 503 named gets the first answer and applies nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.api.conftest import AUTH, eventually, run_worker, serve
from tests.faults.harness import RedisServer
from worker.api import create_app
from worker.config import Config


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class DroppingProxy:
    """TCP between the API and Redis. Once armed, the first packet holding `EXEC` reaches Redis (which
    queues the job) but Redis's reply never comes back: the connection drops, as in a network cut.
    With `outage`, Redis then stays out of reach (new connections are closed) until `outage` is reset."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.armed = False
        self.outage = False
        self.down = False
        self.dropped = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._clients: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> DroppingProxy:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.down:
            client_writer.transport.abort()
            return
        self._clients.append(client_writer)
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        cut = asyncio.Event()

        async def to_redis() -> None:
            while data := await client_reader.read(65536):
                trigger = self.armed and b"EXEC" in data
                if trigger:
                    self.armed = False
                    self.down = self.outage
                    cut.set()  # no reply from now on
                upstream_writer.write(data)
                await upstream_writer.drain()
                if trigger:
                    await asyncio.sleep(0.2)  # Redis runs the transaction meanwhile
                    for writer in self._clients if self.down else [client_writer]:
                        writer.transport.abort()
                    self.dropped.set()
                    return

        async def to_client() -> None:
            while data := await upstream_reader.read(65536):
                if not cut.is_set():  # after the cut Redis's replies are read and thrown away
                    client_writer.write(data)
                    await client_writer.drain()

        tasks = [asyncio.create_task(to_redis()), asyncio.create_task(to_client())]
        self._tasks.update(tasks)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            client_writer.close()
            upstream_writer.close()


def presets_in(client: httpx.AsyncClient) -> Any:
    async def names() -> list[str]:
        return [preset["name"] for preset in (await client.get("/api/db/presets")).json()]

    return names


@contextlib.asynccontextmanager
async def api(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(config)) as client:
        yield client


def unconfirmed(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    body: dict[str, Any] = response.json()
    assert set(body) == {"detail", "may_apply", "event_ids", "idempotency_key"}
    return body


@pytest.mark.parametrize("outage", [True, False], ids=["redis-stays-down", "redis-back-at-once"])
async def test_reply_lost_after_the_job_was_queued(migrated: Config, private_redis: RedisServer, outage: bool) -> None:
    """Redis queued the job, its reply was lost. Redis still down: 503 saying the write may still apply,
    naming the key to retry with. Redis back at once (redis-py retries, finds the job): 202 with its ids.
    Either way it applies once, and the retry with the key answers 201."""
    async with DroppingProxy(private_redis.port) as proxy:
        config = migrated.model_copy(update={"redis_url": proxy.url, "api_wait_s": 1})
        async with api(config) as client:
            proxy.armed, proxy.outage = True, outage
            response = await client.post("/api/db/presets", json={"name": "Cut"}, headers=AUTH)
            assert proxy.dropped.is_set()
            if outage:
                body = unconfirmed(response)
                assert body["may_apply"] is True
                assert "may still apply" in body["detail"]
                key = body["idempotency_key"]
                assert body["event_ids"] == [key]  # without a key of the caller's, the event id is the key
                assert f"Idempotency-Key: {key}" in body["detail"]
            else:
                assert response.status_code == 202, response.text
                key = response.json()["event_ids"][0]
            assert private_redis.client().zcard(config.queue) == 1  # Redis did queue it, once
            proxy.down = False

            async with run_worker(migrated.model_copy(update={"redis_url": private_redis.url})):
                assert await eventually(lambda: _nonempty(presets_in(client))) == ["Cut"]
                retry = await client.post(
                    "/api/db/presets", json={"name": "Cut"}, headers={**AUTH, "Idempotency-Key": key}
                )
            assert retry.status_code == 201, retry.text
            assert retry.json()["name"] == "Cut"
            assert await presets_in(client)() == ["Cut"]  # once


async def _nonempty(check: Any) -> Any:
    value = await check()
    return value or None


async def test_redis_killed_while_the_api_waits(migrated: Config, private_redis: RedisServer) -> None:
    """The job was acknowledged: 503 says it is queued and applies when a worker runs, and it does."""
    config = migrated.model_copy(update={"redis_url": private_redis.url, "api_wait_s": 30})
    async with api(config) as client:
        headers = {**AUTH, "Idempotency-Key": "kill-9"}
        answer = asyncio.create_task(client.post("/api/db/presets", json={"name": "Survivor"}, headers=headers))

        async def queued() -> bool | None:
            return private_redis.client().zcard(config.queue) == 1 or None

        await eventually(queued)
        await asyncio.to_thread(private_redis.kill)
        body = unconfirmed(await asyncio.wait_for(answer, 20))
        assert body["may_apply"] is True
        assert "queued and applies when a worker runs" in body["detail"]
        assert body["idempotency_key"] == "kill-9"

        await asyncio.to_thread(private_redis.start)  # the append-only file brings the job back
        async with run_worker(config):
            assert await eventually(lambda: _nonempty(presets_in(client))) == ["Survivor"]
            retry = await client.post("/api/db/presets", json={"name": "Survivor"}, headers=headers)
        assert retry.status_code == 201, retry.text
        assert await presets_in(client)() == ["Survivor"]


async def test_redis_down_before_anything_was_queued(migrated: Config, private_redis: RedisServer) -> None:
    config = migrated.model_copy(update={"redis_url": private_redis.url})
    private_redis.kill()
    async with api(config) as client:
        response = await client.post("/api/db/presets", json={"name": "Never"}, headers=AUTH)
        body = unconfirmed(response)
        assert body["may_apply"] is False
        assert "nothing was queued" in body["detail"]
        keyed = await client.post("/api/db/presets", json={"name": "Never"}, headers={**AUTH, "Idempotency-Key": "k"})
        assert unconfirmed(keyed)["may_apply"] is True  # an earlier try with this key may have queued it
    private_redis.start()
    with contextlib.closing(redis.Redis(port=private_redis.port)) as check:
        assert check.zcard(config.queue) == 0
