"""The migrated schema is the models' schema: every table and column, the delete rules, the unique keys."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, delete, insert, inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from worker.store.db import Database
from worker.store.migrate import alembic_config, upgrade
from worker.store.models import Base, Bot, DataCacheInfo, Preset

SEED_TABLES = {
    "settings": {"key", "value", "value_type", "description", "created_at", "updated_at"},
    "presets": {
        "id",
        "name",
        "description",
        "indicator_type",
        "settings",
        "tags",
        "is_favorite",
        "win_rate",
        "profit_factor",
        "total_profit_percent",
        "max_drawdown_percent",
        "sharpe_ratio",
        "created_at",
        "updated_at",
        "last_used_at",
    },
    "bots": {
        "id",
        "name",
        "symbol",
        "timeframe",
        "preset_id",
        "config",
        "position_size",
        "is_active",
        "telegram_enabled",
        "telegram_chat_id",
        "total_signals",
        "total_wins",
        "total_losses",
        "total_profit",
        "last_signal_at",
        "created_at",
        "updated_at",
    },
    "signals": {
        "id",
        "uid",
        "bot_id",
        "symbol",
        "timeframe",
        "direction",
        "status",
        "entry_price",
        "stop_loss",
        "take_profits",
        "indicator_values",
        "exit_price",
        "exit_reason",
        "pnl_percent",
        "pnl_amount",
        "created_at",
        "closed_at",
    },
    "data_cache": {
        "id",
        "symbol",
        "timeframe",
        "source",
        "candles_count",
        "start_time",
        "end_time",
        "file_path",
        "file_size",
        "is_complete",
        "created_at",
        "updated_at",
    },
}


def _schema(sync: Connection) -> dict[str, Any]:
    inspector = inspect(sync)
    tables = inspector.get_table_names()
    return {
        "columns": {t: {c["name"]: c for c in inspector.get_columns(t)} for t in tables},
        "foreign_keys": {
            (t, tuple(fk["constrained_columns"]), fk["referred_table"]): (fk["options"].get("ondelete") or "").upper()
            for t in tables
            for fk in inspector.get_foreign_keys(t)
        },
        "unique": {(t, tuple(uq["column_names"])) for t in tables for uq in inspector.get_unique_constraints(t)},
    }


async def migrated_schema(db: Database) -> dict[str, Any]:
    async with db.writer.connect() as conn:
        return await conn.run_sync(_schema)


def drift(sync: Connection) -> list[Any]:
    """What autogenerate would change to bring the database to the models."""
    context = MigrationContext.configure(sync, opts={"compare_type": True, "compare_server_default": True})
    return list(compare_metadata(context, Base.metadata))


async def test_no_drift_between_migrations_and_models(db: Database) -> None:
    """Autogenerate against the migrated database finds nothing to do: the migrations are complete."""
    async with db.writer.connect() as conn:
        assert await conn.run_sync(drift) == []


async def test_every_seed_table_has_its_columns(db: Database) -> None:
    columns = (await migrated_schema(db))["columns"]
    for name, seed_columns in SEED_TABLES.items():
        assert seed_columns <= set(columns[name]), f"{name} lacks {seed_columns - set(columns[name])}"
    for table in Base.metadata.tables.values():
        assert set(columns[table.name]) == {c.name for c in table.columns}, table.name


async def test_nullability_matches_the_models(db: Database) -> None:
    columns = (await migrated_schema(db))["columns"]
    for table in Base.metadata.tables.values():
        for column in table.columns:
            assert columns[table.name][column.name]["nullable"] == column.nullable, f"{table.name}.{column.name}"
    assert columns["data_cache"]["source"]["nullable"] is False


async def test_foreign_key_delete_rules(db: Database) -> None:
    assert (await migrated_schema(db))["foreign_keys"] == {
        ("bots", ("preset_id",), "presets"): "SET NULL",
        ("signals", ("bot_id",), "bots"): "CASCADE",
        ("backtest_results", ("preset_id",), "presets"): "CASCADE",
    }


async def test_unique_constraints(db: Database) -> None:
    unique = (await migrated_schema(db))["unique"]
    assert {
        ("presets", ("name",)),
        ("signals", ("uid",)),
        ("data_cache", ("symbol", "timeframe", "source")),
        ("backtest_results", ("event_id",)),
        ("dead_letters", ("fingerprint",)),
    } <= unique


async def test_delete_rules_are_enforced_by_the_database(db: Database) -> None:
    """Plain SQL deletes, no ORM cascade: the rules hold for any writer (SQLite needs foreign_keys=ON)."""
    async with db.writer.begin() as conn:
        new_preset = insert(Preset).values(name="p", settings={}, tags=[]).returning(Preset.id)
        preset_id = (await conn.execute(new_preset)).scalar_one()
        bot_values = {"symbol": "BTCUSDT", "timeframe": "1h", "config": {}, "position_size": 100.0}
        await conn.execute(insert(Bot).values(name="b", preset_id=preset_id, **bot_values))
        await conn.execute(delete(Preset).where(Preset.id == preset_id))
        assert (await conn.execute(select(Bot.preset_id))).scalars().all() == [None]
        with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
            async with conn.begin_nested():
                await conn.execute(update(Bot).values(preset_id=12345))


async def test_migration_0003_keeps_cache_rows_and_takes_big_files(db: Database) -> None:
    """From 0002 to head: existing rows survive (SQLite copies the table), and file_size holds 3 GiB."""
    async with db.writer.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0002"))
        assert "file_size" in repr(await conn.run_sync(drift))  # the drift check sees what 0003 fixes
        await conn.execute(
            insert(DataCacheInfo).values(symbol="BTCUSDT", timeframe="1h", source="binance", file_size=1024)
        )
    await upgrade(db.writer)
    async with db.writer.begin() as conn:
        await conn.execute(update(DataCacheInfo).values(file_size=3 * 2**30))
        rows = (await conn.execute(select(DataCacheInfo.symbol, DataCacheInfo.file_size))).all()
    assert [tuple(row) for row in rows] == [("BTCUSDT", 3 * 2**30)]


async def test_migration_0006_rounds_amounts_into_units_and_keeps_them(db: Database) -> None:
    """From 0005 to head: float totals with drift become exact units, on SQLite and PostgreSQL."""
    async with db.writer.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0005"))
        await conn.execute(
            text(
                "INSERT INTO bots (name, symbol, timeframe, config, position_size, is_active, telegram_enabled,"
                " total_signals, total_wins, total_losses, total_profit, created_at, updated_at)"
                " VALUES ('b', 'BTCUSDT', '1h', '{}', 100.0, false, false, 2, 1, 1, 304.16958800000003,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    await upgrade(db.writer)
    async with db.writer.begin() as conn:
        assert (await conn.execute(text("SELECT total_profit FROM bots"))).scalar_one() == 30_416_958_800
        assert (await conn.execute(select(Bot.total_profit))).scalar_one() == 304.169588
        assert (await conn.execute(select(Bot.active_version))).scalar_one() is None
