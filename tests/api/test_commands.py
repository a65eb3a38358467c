"""Writes go through the worker: 202 when none answers, applied once one runs; the API cannot write."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from tests.api.conftest import AUTH, eventually, run_worker, serve
from worker.api import create_app
from worker.api.commands import outcome
from worker.api.errors import ApiError, WriteQueued
from worker.api.schemas import Queued
from worker.config import Config


async def test_no_worker_means_202_with_the_ids_and_the_write_applies_later(migrated: Config, redis_url: str) -> None:
    config = migrated.model_copy(update={"api_wait_s": 0.1})
    async with serve(create_app(config)) as client:
        response = await client.post("/api/db/presets", json={"name": "Later"}, headers=AUTH)
        assert response.status_code == 202
        body = response.json()
        assert body["status"] == "queued"
        assert set(body) == {"event_ids", "job_ids", "status"}
        assert (await client.get("/api/db/presets")).json() == []  # nothing written by the API itself
        queue: Redis = Redis.from_url(redis_url)
        try:
            assert [job.decode() for job in await queue.zrange(config.queue, 0, -1)] == body["job_ids"]
        finally:
            await queue.aclose()

        async with run_worker(config):

            async def applied() -> list[str] | None:
                names = [preset["name"] for preset in (await client.get("/api/db/presets")).json()]
                return names or None

            assert await eventually(applied) == ["Later"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/db/settings", {"key": "k", "value": 1}),
        ("DELETE", "/api/db/settings/k", None),
        ("PUT", "/api/db/presets/1", {"name": "p"}),
        ("PUT", "/api/db/presets/1/performance", {"win_rate": 50}),
        ("POST", "/api/db/presets/1/favorite", None),
        ("DELETE", "/api/db/presets/1", None),
        ("DELETE", "/api/db/cache/BTCUSDT/1h", None),
    ],
)
async def test_every_write_is_202_without_a_worker(migrated: Config, method: str, path: str, body: object) -> None:
    async with serve(create_app(migrated.model_copy(update={"api_wait_s": 0.05}))) as client:
        response = await client.request(method, path, json=body, headers=AUTH)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"


async def test_the_api_connection_cannot_write(migrated: Config) -> None:
    app = create_app(migrated)
    async with serve(app):
        reader = app.state.resources.reader
        with pytest.raises(OperationalError, match="readonly"):
            async with reader.begin() as conn:
                await conn.execute(text("INSERT INTO settings (key, value_type) VALUES ('x', 'null')"))
        async with reader.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM settings"))).scalar() == 0


QUEUED = Queued(event_ids=["e1"], job_ids=["j1"])


def test_outcome_reads_the_answer_or_the_refusal_of_our_event() -> None:
    assert outcome({"results": {"e1": {"preset_id": 3}}}, "e1", QUEUED) == {"preset_id": 3}
    with pytest.raises(ApiError) as refused:
        outcome({"rejections": [{"event_id": "e1", "status": 409, "reason": "taken"}]}, "e1", QUEUED)
    assert (refused.value.status, refused.value.detail) == (409, "taken")
    with pytest.raises(ApiError) as dead:
        outcome({"dead_letters": [{"event_id": "e1", "reason": "bad"}]}, "e1", QUEUED)
    assert dead.value.status == 422
    with pytest.raises(WriteQueued):
        outcome({"requeued": 1, "reason": "database is locked"}, "e1", QUEUED)
    with pytest.raises(ApiError) as odd:
        outcome("not a dict", "e1", QUEUED)
    assert odd.value.status == 502
