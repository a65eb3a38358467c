"""`GET /api/db/info` and `GET /api/db/dead-letters`."""

from __future__ import annotations

import uuid

import httpx

from tests.api.conftest import AUTH, RunningWorker, eventually
from worker.config import Config
from worker.runtime.client import arq_pool


async def test_info_counts_rows_and_applied_events(client: httpx.AsyncClient, worker: RunningWorker) -> None:
    before = (await client.get("/api/db/info")).json()
    assert before["backend"] == "sqlite"
    assert before["counts"]["presets"] == 0
    assert before["applied_events"] == 0
    assert before["size_bytes"] > 0

    assert (await client.post("/api/db/presets", json={"name": "p"}, headers=AUTH)).status_code == 201
    after = (await client.get("/api/db/info")).json()
    assert after["counts"]["presets"] == 1
    assert after["applied_events"] == 1
    assert after["last_applied_at"] is not None


async def test_dead_letters_lists_what_the_worker_refused(
    client: httpx.AsyncClient, worker: RunningWorker, migrated: Config
) -> None:
    # A producer that skipped validation: the worker dead-letters its events, the API shows them.
    async with arq_pool(migrated) as pool:
        for index in range(3):
            event = {"type": "no.such", "event_id": str(uuid.uuid4()), "n": index}
            await pool.enqueue_job("apply_events", [event], _queue_name=migrated.queue)

    async def three() -> dict[str, object] | None:
        body: dict[str, object] = (await client.get("/api/db/dead-letters", params={"limit": 2})).json()
        return body if body["total"] == 3 else None

    page = await eventually(three)
    items = page["items"]
    assert isinstance(items, list)
    assert len(items) == 2
    assert all("type" in item["reason"] for item in items)
    for item in items:  # the whole payload described, even when only its first 64 KiB are kept
        assert item["payload_size"] == len(item["payload"].encode())
        assert len(item["payload_sha256"]) == 64
        assert item["payload_truncated"] is False
    rest = (await client.get("/api/db/dead-letters", params={"limit": 2, "offset": 2})).json()
    assert len(rest["items"]) == 1
    assert (await client.get("/api/db/dead-letters", params={"limit": 1001})).status_code == 422
