"""`POST /api/events`: raw events validated with the catalogue, queued, applied by the worker."""

from __future__ import annotations

import httpx

from tests.api.conftest import AUTH, RunningWorker, eventually, with_id
from worker.config import Config


async def test_one_event_is_202_with_its_id_and_gets_applied(client: httpx.AsyncClient, worker: RunningWorker) -> None:
    event_id = "0b9f7a9e-4a53-4f3c-8d2e-6f1f2f0d9a11"
    event = {"type": "settings.set", "key": "from.events", "value": [1, 2], "event_id": event_id}
    response = await client.post("/api/events", json=event, headers=AUTH)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["event_ids"] == [event_id]
    assert len(body["job_ids"]) == 1

    async def applied() -> object:
        got = await client.get("/api/db/settings/from.events")
        return got.json()["value"] if got.status_code == 200 else None

    assert await eventually(applied) == [1, 2]


async def test_a_list_is_published_in_as_few_jobs_as_the_batch_limit_allows(
    client: httpx.AsyncClient, migrated: Config
) -> None:
    events = [with_id({"type": "settings.set", "key": f"k{i}", "value": i}) for i in range(5)]
    response = await client.post("/api/events", json=events, headers=AUTH)
    assert response.status_code == 202
    assert len(response.json()["event_ids"]) == 5
    assert len(set(response.json()["event_ids"])) == 5
    assert len(response.json()["job_ids"]) == 1


async def test_invalid_events_are_422_naming_index_and_field_and_nothing_is_queued(
    client: httpx.AsyncClient, migrated: Config
) -> None:
    events = [
        with_id({"type": "settings.set", "key": "ok", "value": 1}),
        with_id({"type": "signal.created", "signal_uid": "x", "bot_id": 1, "symbol": "BTCUSDT", "timeframe": "1h",
                 "direction": "sideways", "entry_price": 1.0}),
        {"type": "settings.set", "key": "no-id", "value": 1},
    ]  # fmt: skip
    response = await client.post("/api/events", json=events, headers=AUTH)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(line.startswith("events[1].direction") for line in detail), detail
    assert any(line.startswith("events[2].event_id: required on the wire") for line in detail), detail

    unknown = await client.post("/api/events", json={"type": "no.such"}, headers=AUTH)
    assert unknown.status_code == 422
    assert "type" in unknown.text
    empty = await client.post("/api/events", json=[], headers=AUTH)
    assert empty.status_code == 422
    not_objects = await client.post("/api/events", json=[1, 2], headers=AUTH)
    assert not_objects.status_code == 422


async def test_lone_surrogates_are_refused_before_reaching_the_queue(
    client: httpx.AsyncClient, migrated: Config
) -> None:
    body = b'{"type": "settings.set", "key": "k", "value": "\\ud800"}'
    response = await client.post("/api/events", content=body, headers={**AUTH, "content-type": "application/json"})
    assert response.status_code == 422
    assert "surrogate" in response.text
