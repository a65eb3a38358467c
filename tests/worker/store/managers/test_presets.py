"""PresetManager: the seed's examples, partial updates, duplicate names and what a delete takes with it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.worker.store.managers.conftest import assert_utc
from worker import BotManager, PresetManager, transaction
from worker.store.db import Database
from worker.store.errors import DuplicateError
from worker.store.models import BacktestResult, Preset

METRICS = ("win_rate", "profit_factor", "total_profit_percent", "max_drawdown_percent", "sharpe_ratio")


def metrics_of(preset: Preset | None) -> dict[str, float | None]:
    assert preset is not None
    return {name: getattr(preset, name) for name in METRICS}


async def test_seed_example(db: Database) -> None:
    """The seed README's Preset section, line by line."""
    preset = await PresetManager.create(
        name="TRG Aggressive",
        description="High risk, high reward",
        settings={"trg_atr_length": 30, "trg_multiplier": 3.0, "tp_count": 4},
        tags=["aggressive", "btc"],
    )
    preset_id = preset.id

    got = await PresetManager.get(preset_id)
    assert got is not None
    assert got.name == "TRG Aggressive"
    assert got.description == "High risk, high reward"
    assert got.settings == {"trg_atr_length": 30, "trg_multiplier": 3.0, "tp_count": 4}
    assert type(got.settings["trg_multiplier"]) is float
    assert got.tags == ["aggressive", "btc"]
    assert (got.indicator_type, got.is_favorite) == ("trg", False)
    by_name = await PresetManager.get_by_name("TRG Aggressive")
    assert by_name is not None
    assert by_name.id == preset_id

    assert await PresetManager.list_all(favorites_only=True) == []
    await PresetManager.toggle_favorite(preset_id)
    assert [p.id for p in await PresetManager.list_all(favorites_only=True)] == [preset_id]

    await PresetManager.update_performance(preset_id, win_rate=75.5, profit_factor=2.3, total_profit_percent=156.7)
    rated = await PresetManager.get(preset_id)
    assert metrics_of(rated) == {
        "win_rate": 75.5,
        "profit_factor": 2.3,
        "total_profit_percent": 156.7,
        "max_drawdown_percent": None,
        "sharpe_ratio": None,
    }

    assert await PresetManager.delete(preset_id) is True
    assert await PresetManager.get(preset_id) is None


async def test_missing_preset(db: Database) -> None:
    """Every call on an id that does not exist says so instead of raising."""
    assert await PresetManager.get(999) is None
    assert await PresetManager.get_by_name("nope") is None
    assert await PresetManager.update(999, name="x") is None
    assert await PresetManager.update_performance(999, win_rate=1.0) is None
    assert await PresetManager.toggle_favorite(999) is None
    assert await PresetManager.delete(999) is False


async def test_duplicate_name_is_refused_with_a_clear_error(db: Database) -> None:
    await PresetManager.create(name="Same")
    with pytest.raises(DuplicateError, match="'Same' already exists"):
        await PresetManager.create(name="Same", description="second")
    assert len(await PresetManager.list_all()) == 1


async def test_rename_to_a_taken_name_is_refused(db: Database) -> None:
    first = await PresetManager.create(name="First")
    second = await PresetManager.create(name="Second")
    with pytest.raises(DuplicateError, match="'First'"):
        await PresetManager.update(second.id, name="First", description="changed")
    unchanged = await PresetManager.get(second.id)
    assert unchanged is not None
    assert (unchanged.name, unchanged.description) == ("Second", None)
    renamed = await PresetManager.update(first.id, name="First")  # its own name is not a duplicate
    assert renamed is not None
    assert renamed.name == "First"


async def test_update_changes_only_the_given_fields(db: Database) -> None:
    preset = await PresetManager.create(name="P", description="d", settings={"a": 1}, tags=["x"])
    updated = await PresetManager.update(preset.id, settings={"a": 2, "b": [1.5]}, tags=("y", "z"))
    assert updated is not None
    got = await PresetManager.get(preset.id)
    assert got is not None
    assert (got.name, got.description, got.indicator_type) == ("P", "d", "trg")
    assert got.settings == {"a": 2, "b": [1.5]}
    assert got.tags == ["y", "z"]
    assert got.updated_at > preset.updated_at
    assert got.created_at == preset.created_at


async def test_update_refuses_unknown_fields(db: Database) -> None:
    preset = await PresetManager.create(name="P")
    with pytest.raises(ValueError, match="unknown field\\(s\\) win_rate"):
        await PresetManager.update(preset.id, win_rate=1.0)


async def test_update_performance_changes_only_the_metrics_it_is_given(db: Database) -> None:
    """The seed's version nulled every metric it was not given; ours keeps them."""
    preset = await PresetManager.create(name="P")
    assert preset.last_used_at is None
    await PresetManager.update_performance(
        preset.id,
        win_rate=60.0,
        profit_factor=1.5,
        total_profit_percent=10.0,
        max_drawdown_percent=5.0,
        sharpe_ratio=1.2,
    )
    result = await PresetManager.update_performance(preset.id, sharpe_ratio=2.0, win_rate=0.0)
    assert result is not None
    assert metrics_of(await PresetManager.get(preset.id)) == {
        "win_rate": 0.0,
        "profit_factor": 1.5,
        "total_profit_percent": 10.0,
        "max_drawdown_percent": 5.0,
        "sharpe_ratio": 2.0,
    }
    assert metrics_of(result)["sharpe_ratio"] == 2.0
    assert_utc(result.last_used_at)


async def test_toggle_favorite_flips_both_ways(db: Database) -> None:
    preset = await PresetManager.create(name="P")
    on = await PresetManager.toggle_favorite(preset.id)
    assert on is not None
    assert on.is_favorite is True
    off = await PresetManager.toggle_favorite(preset.id)
    assert off is not None
    assert off.is_favorite is False
    got = await PresetManager.get(preset.id)
    assert got is not None
    assert got.is_favorite is False


async def test_list_all_filters_and_limit(db: Database) -> None:
    """Most recently updated first; the filters combine; `limit` caps the answer."""
    trg = await PresetManager.create(name="trg-1")
    rsi = await PresetManager.create(name="rsi-1", indicator_type="rsi", is_favorite=True)
    trg_fav = await PresetManager.create(name="trg-2", is_favorite=True)
    await PresetManager.update(trg.id, description="touched last")

    assert [p.name for p in await PresetManager.list_all()] == ["trg-1", "trg-2", "rsi-1"]
    assert [p.id for p in await PresetManager.list_all(favorites_only=True)] == [trg_fav.id, rsi.id]
    assert [p.id for p in await PresetManager.list_all(indicator_type="rsi")] == [rsi.id]
    assert [p.id for p in await PresetManager.list_all(favorites_only=True, indicator_type="trg")] == [trg_fav.id]
    assert [p.name for p in await PresetManager.list_all(limit=2)] == ["trg-1", "trg-2"]
    assert await PresetManager.list_all(indicator_type="macd") == []


async def test_delete_detaches_bots_and_removes_backtest_history(db: Database) -> None:
    """Bots keep running without the preset (preset_id NULL); its backtest rows go with it."""
    doomed = await PresetManager.create(name="Doomed")
    kept = await PresetManager.create(name="Kept")
    orphan = await BotManager.create(name="b1", symbol="BTCUSDT", timeframe="1h", preset_id=doomed.id)
    other = await BotManager.create(name="b2", symbol="ETHUSDT", timeframe="1h", preset_id=kept.id)
    async with transaction() as session:
        for preset_id in (doomed.id, doomed.id, kept.id):
            session.add(BacktestResult(preset_id=preset_id, symbol="BTCUSDT", timeframe="1h", win_rate=50.0))

    assert await PresetManager.delete(doomed.id) is True

    detached = await BotManager.get(orphan.id)
    assert detached is not None
    assert detached.preset_id is None
    untouched = await BotManager.get(other.id)
    assert untouched is not None
    assert untouched.preset_id == kept.id
    async with transaction() as session:
        history = (await session.execute(select(BacktestResult.preset_id, func.count()).group_by("preset_id"))).all()
    assert [tuple(row) for row in history] == [(kept.id, 1)]


async def test_manager_calls_join_the_enclosing_transaction(db: Database) -> None:
    preset = await PresetManager.create(name="P")
    with pytest.raises(RuntimeError):
        async with transaction():
            await PresetManager.create(name="Q")
            await PresetManager.update_performance(preset.id, win_rate=99.0)
            await PresetManager.toggle_favorite(preset.id)
            raise RuntimeError("abort")
    assert [p.name for p in await PresetManager.list_all()] == ["P"]
    got = await PresetManager.get(preset.id)
    assert got is not None
    assert (got.win_rate, got.is_favorite, got.last_used_at) == (None, False, None)


async def test_timestamps_are_utc(db: Database) -> None:
    preset = await PresetManager.create(name="P")
    await PresetManager.update_performance(preset.id, win_rate=1.0)
    got = await PresetManager.get(preset.id)
    assert got is not None
    for value in (got.created_at, got.updated_at, got.last_used_at):
        assert_utc(value)
