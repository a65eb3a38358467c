"""Data cache metadata: entries are written with `cache.upsert` events, read and deleted through the API."""

from __future__ import annotations

import httpx

from tests.api.conftest import AUTH, RunningWorker, eventually, with_id


async def upsert(client: httpx.AsyncClient, symbol: str, timeframe: str, **fields: object) -> dict[str, object]:
    event = with_id({"type": "cache.upsert", "symbol": symbol, "timeframe": timeframe, **fields})
    assert (await client.post("/api/events", json=event, headers=AUTH)).status_code == 202
    source = str(fields.get("data_source", "binance"))

    async def stored() -> dict[str, object] | None:
        response = await client.get(f"/api/db/cache/{symbol}/{timeframe}", params={"source": source})
        return response.json() if response.status_code == 200 else None

    return await eventually(stored)


async def test_get_list_and_delete(client: httpx.AsyncClient, worker: RunningWorker) -> None:
    entry = await upsert(client, "BTCUSDT", "1h", candles_count=8760, is_complete=True)
    assert (entry["candles_count"], entry["is_complete"], entry["source"]) == (8760, True, "binance")
    await upsert(client, "ETHUSDT", "4h", data_source="bybit")

    listed = (await client.get("/api/db/cache")).json()
    assert [(e["symbol"], e["source"]) for e in listed] == [("BTCUSDT", "binance"), ("ETHUSDT", "bybit")]
    only_bybit = (await client.get("/api/db/cache", params={"source": "bybit"})).json()
    assert [e["symbol"] for e in only_bybit] == ["ETHUSDT"]

    assert (await client.delete("/api/db/cache/BTCUSDT/1h", headers=AUTH)).status_code == 204
    assert (await client.get("/api/db/cache/BTCUSDT/1h")).status_code == 404
    assert (await client.delete("/api/db/cache/BTCUSDT/1h", headers=AUTH)).status_code == 404
    # The source is part of the key: the bybit entry is not the binance one.
    assert (await client.get("/api/db/cache/ETHUSDT/4h")).status_code == 404
    assert (await client.delete("/api/db/cache/ETHUSDT/4h?source=bybit", headers=AUTH)).status_code == 204


async def test_bad_symbol_or_timeframe_is_422(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/db/cache/BTCUSDT/1x")).status_code == 422
    assert (await client.get("/api/db/cache/-bad/1h")).status_code == 422
    assert (await client.delete("/api/db/cache/BTCUSDT/0h", headers=AUTH)).status_code == 422
