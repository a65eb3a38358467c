"""Bots and signals (read here, written by events): stats, filters, pagination with a total."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import AUTH, RunningWorker, eventually, with_id


async def publish(client: httpx.AsyncClient, *events: dict[str, Any]) -> list[str]:
    response = await client.post("/api/events", json=[with_id(event) for event in events], headers=AUTH)
    assert response.status_code == 202, response.text
    ids: list[str] = response.json()["event_ids"]
    return ids


async def wait_for(client: httpx.AsyncClient, path: str, predicate: Any) -> Any:
    async def check() -> Any:
        body = (await client.get(path)).json()
        return body if predicate(body) else None

    return await eventually(check)


def signal(uid: str, bot_id: int, symbol: str = "BTCUSDT", **fields: Any) -> dict[str, Any]:
    return {
        "type": "signal.created",
        "signal_uid": uid,
        "bot_id": bot_id,
        "symbol": symbol,
        "timeframe": "1h",
        "direction": "long",
        "entry_price": 100.0,
        **fields,
    }


@pytest.fixture
async def seeded(client: httpx.AsyncClient, worker: RunningWorker) -> dict[str, Any]:
    """Two bots; bot 1 has three signals (one closed with a win), bot 2 one signal."""
    await publish(
        client,
        {"type": "bot.create", "name": "Scalper", "symbol": "BTCUSDT", "timeframe": "5m", "is_active": True},
        {"type": "bot.create", "name": "Swing", "symbol": "ETHUSDT", "timeframe": "4h"},
    )
    bots = await wait_for(client, "/api/db/bots", lambda body: len(body) == 2)
    first, second = (bot["id"] for bot in bots)
    await publish(
        client,
        signal("s1", first, occurred_at="2030-01-01T00:00:00Z"),
        signal("s2", first),
        signal("s3", first, symbol="SOLUSDT"),
        signal("s4", second, symbol="ETHUSDT"),
        {"type": "signal.closed", "signal_uid": "s1", "exit_price": 110.0, "exit_reason": "tp1", "pnl_percent": 10.0},
    )
    await wait_for(client, "/api/db/signals?status=closed", lambda body: body["total"] == 1)
    await wait_for(client, "/api/db/signals", lambda body: body["total"] == 4)
    return {"first": first, "second": second}


async def test_bots_list_and_active_filter(client: httpx.AsyncClient, seeded: dict[str, Any]) -> None:
    names = [bot["name"] for bot in (await client.get("/api/db/bots")).json()]
    assert names == ["Scalper", "Swing"]
    active = (await client.get("/api/db/bots", params={"active_only": True})).json()
    assert [bot["id"] for bot in active] == [seeded["first"]]


async def test_bot_detail_has_stats(client: httpx.AsyncClient, seeded: dict[str, Any]) -> None:
    bot = (await client.get(f"/api/db/bots/{seeded['first']}")).json()
    stats = bot["stats"]
    assert (stats["total_signals"], stats["total_wins"], stats["total_losses"]) == (1, 1, 0)
    assert stats["win_rate"] == 100.0
    assert stats["open_signals"] == 2
    assert stats["total_profit"] == pytest.approx(10.0)  # position_size 100 * 10 %
    other = (await client.get(f"/api/db/bots/{seeded['second']}")).json()
    assert other["stats"]["win_rate"] is None
    assert (await client.get("/api/db/bots/999")).status_code == 404


async def test_signals_filters(client: httpx.AsyncClient, seeded: dict[str, Any]) -> None:
    async def uids(**params: Any) -> list[str]:
        body = (await client.get("/api/db/signals", params=params)).json()
        return sorted(item["uid"] for item in body["items"])

    assert await uids(bot_id=seeded["first"]) == ["s1", "s2", "s3"]
    assert await uids(symbol="ETHUSDT") == ["s4"]
    assert await uids(status="closed") == ["s1"]
    assert await uids(status="active", bot_id=seeded["first"], symbol="BTCUSDT") == ["s2"]


async def test_signals_date_range(client: httpx.AsyncClient, seeded: dict[str, Any]) -> None:
    """signal.created's `occurred_at` is its creation time: s1 is in 2030, the others now."""
    later = (await client.get("/api/db/signals", params={"from": "2029-12-31T23:00:00-01:00"})).json()
    assert [item["uid"] for item in later["items"]] == ["s1"]  # 2030-01-01T00:00Z, from inclusive
    earlier = (await client.get("/api/db/signals", params={"to": "2030-01-01T00:00:00"})).json()
    assert sorted(item["uid"] for item in earlier["items"]) == ["s2", "s3", "s4"]  # to exclusive, naive is UTC
    backwards = await client.get("/api/db/signals", params={"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00Z"})
    assert backwards.status_code == 422


async def test_signals_pagination_reports_the_total(client: httpx.AsyncClient, seeded: dict[str, Any]) -> None:
    seen: list[str] = []
    for offset in (0, 2, 4):
        body = (await client.get("/api/db/signals", params={"limit": 2, "offset": offset})).json()
        assert (body["total"], body["limit"], body["offset"]) == (4, 2, offset)
        seen += [item["uid"] for item in body["items"]]
    assert sorted(seen) == ["s1", "s2", "s3", "s4"]
    assert seen[0] == "s1"  # newest first: s1 is dated 2030
    assert (await client.get("/api/db/signals", params={"limit": 0})).status_code == 422
    assert (await client.get("/api/db/signals", params={"status": "lost"})).status_code == 422


async def test_signal_by_id(client: httpx.AsyncClient, seeded: dict[str, Any]) -> None:
    item = (await client.get("/api/db/signals", params={"status": "closed"})).json()["items"][0]
    got = await client.get(f"/api/db/signals/{item['id']}")
    assert got.status_code == 200
    assert got.json() == item
    assert got.json()["exit_reason"] == "tp1"
    assert (await client.get("/api/db/signals/424242")).status_code == 404
