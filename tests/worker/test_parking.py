"""Parking's bookkeeping: the in-memory hint that spares a query after every batch."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from events import BotToggled, SignalClosed
from worker import close_db, init_db
from worker.db import Database, get_database
from worker.parking import has_parked, park, retry_parked


@pytest.fixture
async def database(sqlite_url: str) -> AsyncIterator[Database]:
    database = init_db(sqlite_url)
    await database.ensure_schema()
    yield database
    await close_db()


def a_close() -> SignalClosed:
    return SignalClosed(signal_uid="nowhere", exit_price=1.0, exit_reason="sl", pnl_percent=-1.0)


async def test_an_empty_table_is_read_once_then_known(database: Database) -> None:
    assert database.parked_hint is None
    assert await has_parked() is False
    assert database.parked_hint is False


async def test_parking_sets_the_hint_and_a_retry_pass_makes_it_unknown(database: Database) -> None:
    assert await has_parked() is False
    await park(a_close(), "signal missing")
    assert get_database().parked_hint is True
    assert await has_parked() is True

    outcome = await retry_parked(600, due_only=False)

    assert outcome["applied"] == 0  # its signal still does not exist
    assert database.parked_hint is None
    assert await has_parked() is True  # read again: the event is still parked


async def test_a_scheduled_pass_with_nothing_parked_keeps_the_hint(database: Database) -> None:
    assert await has_parked() is False
    assert await retry_parked(600, due_only=True) == {"applied": 0, "parked": 0, "dead": 0}
    assert database.parked_hint is False


async def test_a_scheduled_pass_still_finds_events_parked_by_another_process(database: Database) -> None:
    assert await has_parked() is False
    await park(BotToggled(bot_id=99, active=True), "bot missing")  # as another worker would: behind the hint
    database.parked_hint = False

    outcome = await retry_parked(600, due_only=False)

    assert outcome["parked"] == 1  # tried (its signal still missing), not skipped
