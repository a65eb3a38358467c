"""No request gets a 500: not for what a caller sends, not for what the database holds.

Requests are written by hand (raw bytes where the JSON is not valid JSON: NaN, Infinity, 1e400, lone
surrogates); stored values are written straight into the SQLite file, as an older version or a person
with `sqlite3` would have left them.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from tests.api.conftest import AUTH, RunningWorker, eventually, with_id
from worker.api.render import MAX_DEPTH, TRUNCATED_KEY
from worker.config import Config

JSON_WRITE = {**AUTH, "content-type": "application/json"}


def database_file(config: Config) -> Path:
    database = make_url(config.database_url).database
    assert database
    return Path(database)


def assert_encodable(response: httpx.Response) -> Any:
    """Valid UTF-8 and strict JSON (no NaN), whatever the status."""
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    response.content.decode("utf-8")  # strict: a lone surrogate cannot have been written
    return json.loads(response.content, parse_constant=lambda name: pytest.fail(f"{name} in the answer"))


# --- what a caller sends -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/db/presets", rb'{"name": "x\ud83d"}'),
        ("POST", "/api/db/settings", b'{"key": NaN}'),
        ("POST", "/api/db/settings", b'{"key": "k", "value": Infinity}'),
        ("POST", "/api/db/settings", b'{"key": 1e400, "value": -1e400}'),
        ("POST", "/api/db/settings", rb'{"key": "k\udc00", "value": 1}'),
        ("POST", "/api/db/settings", rb'{"key": "k", "value": {"\ud83d": 1}}'),
        ("POST", "/api/db/settings", b"NaN"),
        ("POST", "/api/db/settings", b'{"key": "k", "value": ' + b"[" * 900 + b"]" * 900 + b"}"),
        ("POST", "/api/db/presets", b'{"name": "n", "settings": {"a": ' + b"[" * 900 + b"]" * 900 + b"}}"),
        ("PUT", "/api/db/presets/1/performance", b'{"win_rate": -Infinity}'),
        ("PUT", "/api/db/presets/1", rb'{"description": "\udfff"}'),
        ("POST", "/api/events", b'{"type": "settings.set", "key": "k", "value": NaN}'),
        ("POST", "/api/events", rb'{"type": "settings.set", "key": "k", "value": "\ud800"}'),
        ("POST", "/api/events", b"[NaN, Infinity]"),
    ],
)
async def test_refusals_never_fail_to_encode(
    client: httpx.AsyncClient, method: str, path: str, body: bytes, redis_url: str, queue_name: str
) -> None:
    """The 422 names the problem; the input it echoes is made encodable; nothing is queued."""
    response = await client.request(method, path, content=body, headers=JSON_WRITE)
    assert response.status_code == 422, response.text
    assert assert_encodable(response)["detail"]
    queue: Redis = Redis.from_url(redis_url)
    try:
        assert await queue.zcard(queue_name) == 0
    finally:
        await queue.aclose()


POISON = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", '"\\ud83d"', '"x\\udc00y"', "18446744073709551616"])
JSON_SCALAR = st.sampled_from(["1", "0.5", "true", "null", '"ok"', '"\\u00e9"'])


@st.composite
def poisoned_json(draw: st.DrawFn) -> bytes:
    """JSON text with something JSON or UTF-8 cannot carry somewhere inside, nested a few levels."""
    value = draw(POISON)
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(["key", "value", "name", "settings", "win_rate", "\\ud83d", "x"]))
        others = draw(st.lists(JSON_SCALAR, max_size=2))
        value = draw(
            st.sampled_from([f'{{"{key}": {value}}}', f"[{', '.join([value, *others])}]"]),
        )
    return value.encode()


WRITES = ["/api/db/settings", "/api/db/presets", "/api/events", "/api/db/presets/1/favorite"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=poisoned_json(), path=st.sampled_from(WRITES))
async def test_no_poisoned_body_gets_a_500(client: httpx.AsyncClient, body: bytes, path: str) -> None:
    assert_encodable(await client.post(path, content=body, headers=JSON_WRITE))


@pytest.mark.parametrize(
    "query",
    [
        "from=9999-12-31T23:59:59-05:00",
        "to=0001-01-01T00:00:00%2B01:00",
        "from=0001-01-01T00:00:00%2B01:00&to=9999-12-31T23:59:59-05:00",
        "from=10000-01-01T00:00:00Z",
    ],
)
async def test_times_at_the_edge_of_the_calendar_are_422(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/api/db/signals?{query}")
    assert response.status_code == 422
    assert_encodable(response)


@pytest.mark.parametrize("occurred_at", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00"])
async def test_an_event_at_the_edge_of_the_calendar_is_422(client: httpx.AsyncClient, occurred_at: str) -> None:
    event = {"type": "settings.set", "key": "k", "value": 1, "occurred_at": occurred_at}
    response = await client.post("/api/events", json=event, headers=AUTH)
    assert response.status_code == 422, response.text
    assert "events[0]" in str(assert_encodable(response)["detail"])


# --- what the database holds -------------------------------------------------------------------------


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def store_setting(config: Config, key: str, value_json: str, value_type: str = "json") -> None:
    with closing(sqlite3.connect(database_file(config))) as db, db:
        db.execute(
            "INSERT INTO settings (key, value, value_type, created_at, updated_at) "
            "VALUES (?, ?, ?, '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')",
            (key, value_json, value_type),
        )


def truncated_depth(value: Any) -> int:
    """How many levels of lists the answer shows before the `$truncated` marker."""
    depth = 0
    while isinstance(value, list):
        depth += 1
        value = value[0]
    assert isinstance(value, dict), value
    assert TRUNCATED_KEY in value, value
    return depth


@pytest.mark.parametrize("depth", [600, 1100, 50_000])
async def test_settings_nested_deep_are_shown_cut(client: httpx.AsyncClient, migrated: Config, depth: int) -> None:
    """600 levels (the worker once stored such), and more than any JSON parser here reads."""
    store_setting(migrated, "deep", deep(depth))
    store_setting(migrated, "plain", "3", "int")
    listed = await client.get("/api/db/settings")
    one = await client.get("/api/db/settings/deep")
    body = assert_encodable(listed)
    assert listed.status_code == one.status_code == 200
    values = {setting["key"]: setting["value"] for setting in body}
    assert values["plain"] == 3
    shown = truncated_depth(values["deep"])
    assert shown == (MAX_DEPTH if depth <= 1024 else 0)
    assert assert_encodable(one)["value"] == values["deep"]


@pytest.fixture
async def signal_id(client: httpx.AsyncClient, worker: RunningWorker) -> int:
    """One bot with one signal, made by the worker."""
    bot = with_id({"type": "bot.create", "name": "Scalper", "symbol": "BTCUSDT", "timeframe": "5m"})
    assert (await client.post("/api/events", json=bot, headers=AUTH)).status_code == 202

    async def bot_id() -> int | None:
        bots = (await client.get("/api/db/bots")).json()
        return int(bots[0]["id"]) if bots else None

    created = {
        "event_id": str(uuid.uuid4()),
        "type": "signal.created",
        "signal_uid": "s1",
        "bot_id": await eventually(bot_id),
        "symbol": "BTCUSDT",
        "timeframe": "1h",
        "direction": "long",
        "entry_price": 100.0,
        "indicator_values": {"rsi": 30},
    }
    assert (await client.post("/api/events", json=created, headers=AUTH)).status_code == 202

    async def first_signal() -> int | None:
        items = (await client.get("/api/db/signals")).json()["items"]
        return int(items[0]["id"]) if items else None

    return await eventually(first_signal)


async def test_a_stored_lone_surrogate_is_shown_as_a_replacement_character(
    client: httpx.AsyncClient, migrated: Config, signal_id: int
) -> None:
    """What a JavaScript bot cutting a string inside an emoji left in an older version's database."""
    stored = r'{"note\ud83d": "cut \ud83d", "ok": "\ud83d\ude00", "n": 1}'
    with closing(sqlite3.connect(database_file(migrated))) as db, db:
        db.execute(
            "UPDATE signals SET indicator_values = ?, take_profits = ? WHERE id = ?", (stored, "[1e999]", signal_id)
        )
    one = await client.get(f"/api/db/signals/{signal_id}")
    page = await client.get("/api/db/signals")
    assert one.status_code == page.status_code == 200
    shown = assert_encodable(one)
    assert shown["indicator_values"] == {"note\ufffd": "cut \ufffd", "ok": "\U0001f600", "n": 1}
    assert shown["take_profits"] == [None]  # infinity is not JSON: null
    assert assert_encodable(page)["items"][0]["indicator_values"] == shown["indicator_values"]


async def test_stored_values_of_the_wrong_shape_are_wrapped_not_refused(
    client: httpx.AsyncClient, migrated: Config, signal_id: int
) -> None:
    with closing(sqlite3.connect(database_file(migrated))) as db, db:
        db.execute("UPDATE signals SET indicator_values = '[1, 2]', take_profits = '7' WHERE id = ?", (signal_id,))
        db.execute("UPDATE bots SET config = 'not json at all'")
    shown = assert_encodable(await client.get(f"/api/db/signals/{signal_id}"))
    assert shown["indicator_values"] == {"$stored": [1, 2]}
    assert shown["take_profits"] == [7]
    bot = assert_encodable(await client.get("/api/db/bots"))[0]
    assert TRUNCATED_KEY in bot["config"]  # the marker says the text was not JSON


async def test_a_surrogate_key_holding_nan_is_422(client: httpx.AsyncClient) -> None:
    """Found by the property test above: orjson refuses the key, the standard encoder the NaN."""
    for path in ("/api/events", "/api/db/settings"):
        body = rb'{"\ud83d": NaN, "type": "settings.set", "key": "k", "value": {"\ud83d": NaN}}'
        assert (await client.post(path, content=body, headers=JSON_WRITE)).status_code == 422
