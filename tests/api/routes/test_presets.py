"""Presets through the API with a real worker applying the commands."""

from __future__ import annotations

import httpx

from tests.api.conftest import AUTH, RunningWorker


async def create(client: httpx.AsyncClient, name: str, **fields: object) -> dict[str, object]:
    response = await client.post("/api/db/presets", json={"name": name, **fields}, headers=AUTH)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_create_returns_the_stored_preset_and_get_reads_it_back(
    client: httpx.AsyncClient, worker: RunningWorker
) -> None:
    created = await create(client, "TRG Aggressive", settings={"tp_count": 4}, tags=["btc"])
    assert created["name"] == "TRG Aggressive"
    assert created["settings"] == {"tp_count": 4}
    assert created["tags"] == ["btc"]
    assert created["is_favorite"] is False

    response = await client.get(f"/api/db/presets/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    listed = (await client.get("/api/db/presets")).json()
    assert [preset["id"] for preset in listed] == [created["id"]]


async def test_duplicate_name_is_409_and_nothing_changes(client: httpx.AsyncClient, worker: RunningWorker) -> None:
    await create(client, "Same")
    response = await client.post("/api/db/presets", json={"name": "Same"}, headers=AUTH)
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert len((await client.get("/api/db/presets")).json()) == 1


async def test_update_changes_only_the_fields_given(client: httpx.AsyncClient, worker: RunningWorker) -> None:
    created = await create(client, "Before", description="kept", tags=["a"])
    response = await client.put(f"/api/db/presets/{created['id']}", json={"name": "After"}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "After"
    assert response.json()["description"] == "kept"
    assert response.json()["tags"] == ["a"]


async def test_update_to_a_taken_name_is_409(client: httpx.AsyncClient, worker: RunningWorker) -> None:
    await create(client, "One")
    two = await create(client, "Two")
    response = await client.put(f"/api/db/presets/{two['id']}", json={"name": "One"}, headers=AUTH)
    assert response.status_code == 409


async def test_performance_keeps_the_metrics_not_given(client: httpx.AsyncClient, worker: RunningWorker) -> None:
    created = await create(client, "Rated")
    url = f"/api/db/presets/{created['id']}/performance"
    first = await client.put(url, json={"win_rate": 75.5, "profit_factor": 2.3}, headers=AUTH)
    assert first.status_code == 200, first.text
    second = await client.put(url, json={"sharpe_ratio": 1.2}, headers=AUTH)
    body = second.json()
    assert (body["win_rate"], body["profit_factor"], body["sharpe_ratio"]) == (75.5, 2.3, 1.2)
    assert body["last_used_at"] is not None


async def test_favorite_toggles_without_body_and_sets_with_one(
    client: httpx.AsyncClient, worker: RunningWorker
) -> None:
    created = await create(client, "Fav")
    url = f"/api/db/presets/{created['id']}/favorite"
    assert (await client.post(url, headers=AUTH)).json()["is_favorite"] is True
    assert (await client.post(url, headers=AUTH)).json()["is_favorite"] is False
    assert (await client.post(url, json={"is_favorite": True}, headers=AUTH)).json()["is_favorite"] is True
    assert (await client.post(url, json={"is_favorite": True}, headers=AUTH)).json()["is_favorite"] is True
    favorites = (await client.get("/api/db/presets", params={"favorites_only": True})).json()
    assert [preset["id"] for preset in favorites] == [created["id"]]


async def test_delete_is_204_then_404(client: httpx.AsyncClient, worker: RunningWorker) -> None:
    created = await create(client, "Gone")
    url = f"/api/db/presets/{created['id']}"
    response = await client.delete(url, headers=AUTH)
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(url)).status_code == 404
    assert (await client.delete(url, headers=AUTH)).status_code == 404


async def test_missing_preset_is_404_for_every_write(client: httpx.AsyncClient, worker: RunningWorker) -> None:
    for method, path, body in [
        ("PUT", "/api/db/presets/999", {"name": "x"}),
        ("PUT", "/api/db/presets/999/performance", {"win_rate": 1}),
        ("POST", "/api/db/presets/999/favorite", None),
        ("DELETE", "/api/db/presets/999", None),
    ]:
        response = await client.request(method, path, json=body, headers=AUTH)
        assert response.status_code == 404, (method, path, response.text)
        assert "preset 999 does not exist" in response.json()["detail"]


async def test_invalid_bodies_are_422_naming_the_field(client: httpx.AsyncClient) -> None:
    cases = [
        ("POST", "/api/db/presets", {"name": ""}, "name"),
        ("POST", "/api/db/presets", {"name": "x", "colour": "red"}, "colour"),
        ("PUT", "/api/db/presets/1", {"name": None}, "name"),
        ("PUT", "/api/db/presets/1/performance", {"win_rate": 101}, "win_rate"),
        ("POST", "/api/db/presets/1/favorite", {"is_favorite": "maybe"}, "is_favorite"),
    ]
    for method, path, body, field in cases:
        response = await client.request(method, path, json=body, headers=AUTH)
        assert response.status_code == 422, (path, body, response.text)
        assert field in response.text, response.text


async def test_unknown_id_is_404_and_bad_id_is_422(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/db/presets/12345")).status_code == 404
    assert (await client.get("/api/db/presets/0")).status_code == 422
    assert (await client.get("/api/db/presets/abc")).status_code == 422
    assert (await client.get(f"/api/db/presets/{2**63}")).status_code == 422
