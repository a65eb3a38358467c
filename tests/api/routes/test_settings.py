"""Settings through the API with a real worker."""

from __future__ import annotations

import httpx

from tests.api.conftest import AUTH, RunningWorker


async def test_set_creates_201_then_replaces_200_keeping_the_type(
    client: httpx.AsyncClient, worker: RunningWorker
) -> None:
    first = await client.post(
        "/api/db/settings", json={"key": "optimization.workers", "value": 4, "description": "pool"}, headers=AUTH
    )
    assert first.status_code == 201, first.text
    assert (first.json()["value"], first.json()["value_type"]) == (4, "int")
    second = await client.post("/api/db/settings", json={"key": "optimization.workers", "value": 8.5}, headers=AUTH)
    assert second.status_code == 200
    assert (second.json()["value"], second.json()["value_type"], second.json()["description"]) == (8.5, "float", "pool")

    got = await client.get("/api/db/settings/optimization.workers")
    assert got.status_code == 200
    assert got.json() == second.json()
    listed = (await client.get("/api/db/settings")).json()
    assert [setting["key"] for setting in listed] == ["optimization.workers"]


async def test_json_values_round_trip(client: httpx.AsyncClient, worker: RunningWorker) -> None:
    value = {"live": True, "paper": [1, 2, None]}
    response = await client.post("/api/db/settings", json={"key": "features", "value": value}, headers=AUTH)
    assert response.status_code == 201
    assert (await client.get("/api/db/settings/features")).json()["value"] == value


async def test_delete_is_204_then_404(client: httpx.AsyncClient, worker: RunningWorker) -> None:
    await client.post("/api/db/settings", json={"key": "gone", "value": "x"}, headers=AUTH)
    assert (await client.delete("/api/db/settings/gone", headers=AUTH)).status_code == 204
    assert (await client.get("/api/db/settings/gone")).status_code == 404
    missing = await client.delete("/api/db/settings/gone", headers=AUTH)
    assert missing.status_code == 404
    assert "does not exist" in missing.json()["detail"]


async def test_invalid_key_or_body_is_422(client: httpx.AsyncClient) -> None:
    bad_key = await client.post("/api/db/settings", json={"key": "has space", "value": 1}, headers=AUTH)
    assert bad_key.status_code == 422
    assert "key" in bad_key.text
    no_value = await client.post("/api/db/settings", json={"key": "k"}, headers=AUTH)
    assert no_value.status_code == 422
    assert "value" in no_value.text
    assert (await client.get("/api/db/settings/bad key")).status_code == 422
    not_json = await client.post(
        "/api/db/settings", content=b"{not json", headers={**AUTH, "content-type": "application/json"}
    )
    assert not_json.status_code == 422
