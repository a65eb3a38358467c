"""SettingsManager: the seed's examples, and values that come back with the type they were set with."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.worker.store.managers.conftest import assert_utc
from worker import SettingsManager, transaction
from worker.store.db import Database, create_engine
from worker.store.models import Setting


async def test_seed_example(db: Database) -> None:
    """The seed README's Settings section, line by line."""
    await SettingsManager.set("app.name", "Komas", "Application name")
    await SettingsManager.set("optimization.workers", 4)
    await SettingsManager.set("features.enabled", {"live": True, "paper": True})

    assert await SettingsManager.get("app.name") == "Komas"
    assert await SettingsManager.get("optimization.workers", default=0) == 4
    assert await SettingsManager.get_all() == {
        "app.name": "Komas",
        "features.enabled": {"live": True, "paper": True},
        "optimization.workers": 4,
    }


@pytest.mark.parametrize(
    "value",
    [
        "Komas",
        "",
        "42",  # a string that looks like a number stays a string
        4,
        0,
        -(2**63),
        2**63 - 1,
        1.5,
        3.0,  # SQLite's NUMERIC affinity would make this the integer 3
        1e20,  # PostgreSQL's JSONB would make this an integer
        -2.5e-7,
        True,
        False,
        None,
        {"live": True, "paper": False, "nested": {"ratio": 0.5, "list": [1, "a", None]}},
        [1, 2.5, "three", False, {"x": []}],
        [],
        {},
    ],
    ids=repr,
)
async def test_value_keeps_its_type(db: Database, value: Any) -> None:
    """Whatever goes in comes back equal and of the same type, through every read path."""
    await SettingsManager.set("some.key", value)

    got = await SettingsManager.get("some.key", default="missing")
    assert got == value
    assert type(got) is type(value)
    assert type((await SettingsManager.get_all())["some.key"]) is type(value)
    row = await SettingsManager.get_setting("some.key")
    assert row is not None
    assert type(row.value) is type(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**63, object(), {1, 2}], ids=repr)
async def test_value_that_cannot_round_trip_is_refused(db: Database, value: Any) -> None:
    """Refused before the database sees it, the same on both backends, and nothing is stored."""
    with pytest.raises((TypeError, ValueError)):
        await SettingsManager.set("bad", value)
    assert await SettingsManager.get("bad", default="unset") == "unset"


async def test_get_default_only_when_missing(db: Database) -> None:
    """`default` stands in for a missing key, never for a stored falsy value."""
    assert await SettingsManager.get("nope") is None
    assert await SettingsManager.get("nope", default=7) == 7
    await SettingsManager.set("zero", 0)
    await SettingsManager.set("none", None)
    assert await SettingsManager.get("zero", default=7) == 0
    assert await SettingsManager.get("none", default=7) is None


async def test_set_replaces_value_and_type_and_keeps_description(db: Database) -> None:
    first = await SettingsManager.set("k", 1, "a counter")
    assert_utc(first.created_at)
    await SettingsManager.set("k", "one")
    row = await SettingsManager.get_setting("k")
    assert row is not None
    assert (row.value, row.value_type, row.description) == ("one", "str", "a counter")
    assert row.created_at == first.created_at
    assert row.updated_at >= first.updated_at
    assert_utc(row.updated_at)
    await SettingsManager.set("k", 2, "new description")
    row = await SettingsManager.get_setting("k")
    assert row is not None
    assert (row.value, row.value_type, row.description) == (2, "int", "new description")


async def test_get_all_is_sorted_by_key(db: Database) -> None:
    for key in ("b", "c", "a"):
        await SettingsManager.set(key, key)
    assert list(await SettingsManager.get_all()) == ["a", "b", "c"]
    assert [row.key for row in await SettingsManager.list_all()] == ["a", "b", "c"]


async def test_delete(db: Database) -> None:
    await SettingsManager.set("gone", True)
    assert await SettingsManager.delete("gone") is True
    assert await SettingsManager.get("gone", default="missing") == "missing"
    assert await SettingsManager.delete("gone") is False


@pytest.mark.parametrize("key", ["", "x" * 201])
async def test_bad_key_is_refused(db: Database, key: str) -> None:
    with pytest.raises(ValueError, match="key"):
        await SettingsManager.set(key, 1)


async def test_set_inside_transaction_rolls_back_with_it(db: Database) -> None:
    """A manager call inside `transaction()` is part of it: the outer rollback undoes it."""
    await SettingsManager.set("kept", 1)
    with pytest.raises(RuntimeError):
        async with transaction():
            await SettingsManager.set("kept", 2)
            await SettingsManager.set("new", 3)
            assert await SettingsManager.delete("kept") is True
            raise RuntimeError("abort")
    assert await SettingsManager.get_all() == {"kept": 1}


async def test_call_on_its_own_commits(db: Database) -> None:
    """Outside `transaction()` a manager call is its own transaction: committed when it returns."""
    await SettingsManager.set("committed", [1, 2])
    other = create_engine(db.url)  # another connection pool: sees only what is committed
    try:
        async with other.connect() as conn:
            stored = (await conn.execute(select(Setting.value).where(Setting.key == "committed"))).scalar_one()
    finally:
        await other.dispose()
    assert stored == [1, 2]
