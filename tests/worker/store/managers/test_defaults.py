"""create_default_settings: the seed's defaults, inserted only where missing, never over a user's value."""

from __future__ import annotations

import pytest

from worker import SettingsManager, create_default_settings, transaction
from worker.store.db import Database
from worker.store.managers import DEFAULT_SETTINGS


async def test_inserts_every_default_with_its_type_and_description(db: Database) -> None:
    assert await create_default_settings() == len(DEFAULT_SETTINGS)
    rows = {row.key: row for row in await SettingsManager.list_all()}
    assert set(rows) == set(DEFAULT_SETTINGS)
    for key, (value, description) in DEFAULT_SETTINGS.items():
        assert rows[key].value == value
        assert type(rows[key].value) is type(value)
        assert rows[key].description == description
    assert await SettingsManager.get("optimization.workers", default=0) == 4
    assert await SettingsManager.get("telegram.enabled") is False


async def test_second_run_changes_nothing(db: Database) -> None:
    await create_default_settings()
    before = [(r.key, r.value, r.description, r.updated_at) for r in await SettingsManager.list_all()]
    assert await create_default_settings() == 0
    after = [(r.key, r.value, r.description, r.updated_at) for r in await SettingsManager.list_all()]
    assert after == before


async def test_a_users_value_is_not_overwritten(db: Database) -> None:
    """A changed default stays changed; a deleted one comes back; unknown keys are left alone."""
    await SettingsManager.set("optimization.workers", 16, "mine")
    await SettingsManager.set("my.own", "kept")
    assert await create_default_settings() == len(DEFAULT_SETTINGS) - 1
    row = await SettingsManager.get_setting("optimization.workers")
    assert row is not None
    assert (row.value, row.description) == (16, "mine")

    assert await SettingsManager.delete("app.name") is True
    assert await create_default_settings() == 1
    assert await SettingsManager.get("app.name") == "Komas"
    assert await SettingsManager.get("optimization.workers") == 16
    assert await SettingsManager.get("my.own") == "kept"


async def test_joins_the_enclosing_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with transaction():
            assert await create_default_settings() == len(DEFAULT_SETTINGS)
            raise RuntimeError("abort")
    assert await SettingsManager.get_all() == {}
