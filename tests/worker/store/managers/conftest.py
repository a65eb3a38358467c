"""Helpers of the manager tests: a few ready rows and a recorder of the SQL the writer sends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from worker import BotManager, PresetManager
from worker.store.db import Database
from worker.store.models import Bot, Preset


def assert_utc(value: datetime | None) -> None:
    """Timezone-aware and in UTC, whatever the backend stored."""
    assert value is not None
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


@pytest.fixture
async def preset(db: Database) -> Preset:
    return await PresetManager.create(name="TRG Default", settings={"trg_atr_length": 45})


@pytest.fixture
async def bot(db: Database) -> Bot:
    return await BotManager.create(name="BTC Scalper", symbol="BTCUSDT", timeframe="5m", position_size=200.0)


@pytest.fixture
def statements(db: Database) -> Iterator[list[str]]:
    """Every SQL statement the writer engine sends while the test runs, in order."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(db.writer.sync_engine, "before_cursor_execute", record)
    yield sent
    event.remove(db.writer.sync_engine, "before_cursor_execute", record)
