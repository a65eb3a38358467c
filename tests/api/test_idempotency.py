"""`Idempotency-Key`: a retried write applies once and gets the first answer back.

Real worker, real Redis, real SQLite file; requests written by hand.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import closing
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.api.conftest import AUTH, RunningWorker, eventually, run_worker, serve
from tests.api.test_no_500 import database_file
from worker.api import create_app
from worker.api.idempotency import KEY_NAMESPACE
from worker.config import Config


def keyed(key: str) -> dict[str, str]:
    return {**AUTH, "Idempotency-Key": key}


def processed_ids(config: Config) -> set[str]:
    with closing(sqlite3.connect(database_file(config))) as db:
        return {row[0] for row in db.execute("SELECT event_id FROM processed_events")}


async def queued_jobs(redis_url: str, queue: str) -> int:
    client: Redis = Redis.from_url(redis_url)
    try:
        return int(await client.zcard(queue))
    finally:
        await client.aclose()


@pytest.fixture
async def preset_id(client: httpx.AsyncClient, worker: RunningWorker) -> int:
    response = await client.post("/api/db/presets", json={"name": "Base"}, headers=AUTH)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_a_retried_toggle_toggles_once_and_answers_as_the_first_time(
    client: httpx.AsyncClient, preset_id: int, migrated: Config
) -> None:
    """The toggle is the write a plain retry would undo."""
    path = f"/api/db/presets/{preset_id}/favorite"
    first = await client.post(path, headers=keyed("toggle-1"))
    again = await client.post(path, headers=keyed("toggle-1"))
    assert first.status_code == again.status_code == 200
    assert first.json()["is_favorite"] is True
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert (await client.get(f"/api/db/presets/{preset_id}")).json()["is_favorite"] is True
    assert str(uuid.uuid5(KEY_NAMESPACE, "toggle-1")) in processed_ids(migrated)
    third = await client.post(path, headers=keyed("toggle-2"))  # a new key is a new write
    assert third.json()["is_favorite"] is False


WRITES: list[tuple[str, str, dict[str, Any] | None, int]] = [
    ("POST", "/api/db/settings", {"key": "k", "value": [1, 2]}, 201),
    ("DELETE", "/api/db/settings/k", None, 204),
    ("DELETE", "/api/db/settings/missing", None, 404),
    ("POST", "/api/db/presets", {"name": "Fresh", "tags": ["a"]}, 201),
    ("POST", "/api/db/presets", {"name": "Base"}, 409),
    ("PUT", "/api/db/presets/{preset}", {"description": "changed"}, 200),
    ("PUT", "/api/db/presets/{preset}/performance", {"win_rate": 55.5}, 200),
    ("PUT", "/api/db/presets/999999", {"description": "nobody"}, 404),
    ("DELETE", "/api/db/cache/BTCUSDT/1h", None, 404),
    ("DELETE", "/api/db/presets/{preset}", None, 204),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), WRITES)
async def test_every_write_replays_its_first_answer(
    client: httpx.AsyncClient,
    preset_id: int,
    migrated: Config,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
) -> None:
    if path.startswith("/api/db/settings/k"):
        assert (await client.post("/api/db/settings", json={"key": "k", "value": 1}, headers=AUTH)).status_code == 201
    path = path.format(preset=preset_id)
    key = str(uuid.uuid4())  # a UUID key is the event id itself
    first = await client.request(method, path, json=body, headers=keyed(key))
    assert first.status_code == status, first.text
    before = processed_ids(migrated)
    again = await client.request(method, path, json=body, headers=keyed(key))
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again.headers["idempotent-replayed"] == "true"
    assert key in before
    assert processed_ids(migrated) == before  # the retry applied nothing


async def test_the_same_key_on_another_request_is_422(client: httpx.AsyncClient, preset_id: int) -> None:
    first = await client.post("/api/db/settings", json={"key": "a", "value": 1}, headers=keyed("k1"))
    assert first.status_code == 201
    for method, path, body in [
        ("POST", "/api/db/settings", {"key": "a", "value": 2}),
        ("POST", f"/api/db/presets/{preset_id}/favorite", None),
    ]:
        reused = await client.request(method, path, json=body, headers=keyed("k1"))
        assert reused.status_code == 422
        assert "already used for a different request" in reused.json()["detail"]
    assert (await client.get("/api/db/settings/a")).json()["value"] == 1
    # Keys are compared on the request, not its spelling: the same JSON with keys reordered is the same.
    same = await client.post(
        "/api/db/settings",
        content=b'{"value": 1, "key": "a"}',
        headers={**keyed("k1"), "content-type": "application/json"},
    )
    assert same.status_code == 201


async def test_a_request_refused_before_it_started_keeps_no_answer(
    client: httpx.AsyncClient, worker: RunningWorker
) -> None:
    """A client may fix a bad body and send it again with the same key."""
    bad = await client.post("/api/db/settings", json={"key": "a b", "value": 1}, headers=keyed("fix-me"))
    assert bad.status_code == 422
    fixed = await client.post("/api/db/settings", json={"key": "ab", "value": 1}, headers=keyed("fix-me"))
    assert fixed.status_code == 201


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "tab\tinside", "caf\u00e9"])
async def test_an_unusable_key_is_422_and_nothing_is_queued(
    client: httpx.AsyncClient, key: str, redis_url: str, queue_name: str
) -> None:
    headers = {b"Authorization": AUTH["Authorization"].encode(), b"Idempotency-Key": key.encode()}  # raw UTF-8
    response = await client.post("/api/db/settings", json={"key": "k", "value": 1}, headers=headers)
    assert response.status_code == 422, response.text
    assert "Idempotency-Key" in str(response.json()["detail"])
    assert await queued_jobs(redis_url, queue_name) == 0


async def test_a_retry_after_202_gets_the_answer_the_worker_kept(migrated: Config, redis_url: str) -> None:
    """No worker at first: 202. The worker applies it; the retry reads that job's result: 201, one preset."""
    config = migrated.model_copy(update={"api_wait_s": 0.1})
    async with serve(create_app(config)) as client:
        first = await client.post("/api/db/presets", json={"name": "Later"}, headers=keyed("later"))
        assert first.status_code == 202
        assert first.json()["event_ids"] == [str(uuid.uuid5(KEY_NAMESPACE, "later"))]
        while_queued = await client.post("/api/db/presets", json={"name": "Later"}, headers=keyed("later"))
        assert while_queued.status_code == 202
        assert while_queued.json() == first.json()  # the same job: nothing queued twice
        assert await queued_jobs(redis_url, config.queue) == 1
        async with run_worker(config):

            async def applied() -> list[Any] | None:
                return (await client.get("/api/db/presets")).json() or None

            await eventually(applied)
            retry = await client.post("/api/db/presets", json={"name": "Later"}, headers=keyed("later"))
        assert retry.status_code == 201, retry.text
        assert retry.json()["name"] == "Later"
        assert [preset["name"] for preset in (await client.get("/api/db/presets")).json()] == ["Later"]


async def test_posted_events_keep_their_ids_and_a_retry_with_the_key_replays_the_answer(
    client: httpx.AsyncClient, worker: RunningWorker, migrated: Config
) -> None:
    events = [
        {"type": "settings.set", "event_id": str(uuid.uuid4()), "key": f"e{index}", "value": index}
        for index in range(3)
    ]
    first = await client.post("/api/events", json=events, headers=keyed("batch-1"))
    assert first.status_code == 202
    assert first.json()["event_ids"] == [event["event_id"] for event in events]
    again = await client.post("/api/events", json=events, headers=keyed("batch-1"))
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"

    async def all_applied() -> bool | None:
        return set(first.json()["event_ids"]) <= processed_ids(migrated) or None

    await eventually(all_applied)


async def test_a_write_without_a_key_keeps_no_answer(
    client: httpx.AsyncClient, worker: RunningWorker, redis_url: str, queue_name: str
) -> None:
    """Only its fingerprint, so that a retry with the event id as the key is checked against it."""
    response = await client.post("/api/db/settings", json={"key": "k", "value": 1}, headers=AUTH)
    assert response.status_code == 201
    records: Redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in records.scan_iter(match=f"{queue_name}:api:write:*")]
        assert len(keys) == 1
        record = json.loads(await records.get(keys[0]))
    finally:
        await records.aclose()
    assert set(record) == {"fingerprint"}
