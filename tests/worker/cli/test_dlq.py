"""`komas dlq list / replay / drop` through typer's runner, answered by a real worker process.

Replay and drop are carried out by the worker (the only writer), so each test runs `komas worker`
as a subprocess on its own queue and database; the dead letters come from events that really
failed in it (a batch over `KOMAS_MAX_BATCH`, a job that is not JSON).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from events import BotToggled
from events.wire import dumps, encode_job
from tests.faults.harness import WorkerProcess, enqueue_raw, worker_env
from tests.worker.cli.conftest import Komas, wait_for
from worker import BotManager, close_db, init_db

MAX_BATCH = 2


def rows(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(db_path)) as db:
        return db.execute(sql).fetchall()


def letter_ids(db_path: Path) -> list[int]:
    return [int(str(row[0])) for row in rows(db_path, "SELECT id FROM dead_letters")]


@pytest.fixture
def worker(komas: Komas, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A running `komas worker` on the test's queue and database, killed at the end whatever happens."""

    async def seed() -> None:
        await init_db(komas.database_url).ensure_schema()
        try:
            await BotManager.create(name="dlq", symbol="BTCUSDT", timeframe="1h")
        finally:
            await close_db()

    asyncio.run(seed())
    env = worker_env(komas.database_path, komas.redis_url, komas.queue, max_batch=MAX_BATCH)
    process = WorkerProcess(env, tmp_path / "worker.log")
    process.start()
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture
def letters(komas: Komas, worker: WorkerProcess) -> list[str]:
    """Three valid events dead-lettered (as one row) for arriving in a batch over the limit, plus one non-JSON job."""
    events = [BotToggled(bot_id=1, active=n % 2 == 0) for n in range(MAX_BATCH + 1)]
    enqueue_raw(komas.client, komas.queue, encode_job([dumps(e.to_wire()) for e in events]).body)
    enqueue_raw(komas.client, komas.queue, b"\x80\x04 not json")
    wait_for(lambda: len(rows(komas.database_path, "SELECT id FROM dead_letters")) == 2, timeout=30)
    return [str(event.event_id) for event in events]


def test_list_shows_every_dead_letter_with_its_reason(komas: Komas, letters: list[str]) -> None:
    result = komas("dlq", "list", "--json")
    assert result.exit_code == 0, result.output
    listed = [json.loads(line) for line in result.output.splitlines() if line.strip()]
    assert [item["event_id"] for item in listed] == [None, None]
    reasons = " | ".join(item["reason"] for item in listed)
    assert f"over the limit of {MAX_BATCH}" in reasons
    assert "not valid JSON" in reasons

    table = komas("dlq", "list")
    assert table.exit_code == 0, table.output
    assert "2 dead letter(s)" in table.output
    assert komas("dlq", "list", "--limit", "1", "--json").output.count("\n") == 1


def test_replay_all_waits_and_reports_each_event_applied(
    komas: Komas, letters: list[str], worker: WorkerProcess
) -> None:
    result = komas("dlq", "replay", "--all", "--timeout", "20")
    assert result.exit_code == 0, result.output
    for event_id in letters:  # the batch dead letter is published again in jobs under the batch limit
        assert f"event {event_id}: applied" in result.output
    assert "payload is not JSON events" in result.output  # the non-JSON job is skipped, with the reason
    assert "replayed 1: 0 failed again, 0 not settled yet" in result.output  # the batch, in jobs under the limit
    # It waited: the events are applied by the time it returns.
    assert {row[0] for row in rows(komas.database_path, "SELECT event_id FROM processed_events")} >= set(letters)
    pending = komas("dlq", "list", "--json")
    assert [json.loads(line)["event_id"] for line in pending.output.splitlines()] == [None]
    everything = komas("dlq", "list", "--all", "--json")
    replayed = [json.loads(line) for line in everything.output.splitlines()]
    assert sum(1 for item in replayed if item["replayed_at"]) == 1

    again = komas("dlq", "replay", "--all", "--timeout", "20")  # only the unreplayable one is left
    assert again.exit_code == 0, again.output
    assert "replayed 0" in again.output
    assert worker.alive


def test_replaying_an_applied_event_again_reports_a_duplicate(
    komas: Komas, letters: list[str], worker: WorkerProcess
) -> None:
    (letter_id,) = rows(komas.database_path, "SELECT id FROM dead_letters WHERE reason LIKE '%over the limit%'")[0]
    first = komas("dlq", "replay", str(letter_id), "--timeout", "20")
    assert first.exit_code == 0, first.output
    assert f"event {letters[0]}: applied" in first.output

    second = komas("dlq", "replay", str(letter_id), "--timeout", "20")

    assert second.exit_code == 0, second.output
    assert f"event {letters[0]}: duplicate (applied before)" in second.output


def test_an_event_dead_lettered_again_is_reported_with_its_reason_and_fails(
    komas: Komas, worker: WorkerProcess
) -> None:
    """What `komas dlq replay` used to report as `replayed: [1]`, exit 0."""
    bad = {**BotToggled(bot_id=1, active=True).to_wire(), "bot_id": 0}
    enqueue_raw(komas.client, komas.queue, encode_job([dumps(bad)]).body)
    wait_for(lambda: len(rows(komas.database_path, "SELECT id FROM dead_letters")) == 1, timeout=30)
    (letter_id,) = rows(komas.database_path, "SELECT id FROM dead_letters")[0]

    result = komas("dlq", "replay", str(letter_id), "--timeout", "20")

    assert result.exit_code == 1, result.output
    assert f"dead letter {letter_id}: event {bad['event_id']}: dead-lettered again: " in result.output
    assert "bot_id" in result.output
    assert "replayed 1: 1 failed again" in result.output
    # Dead-lettered again, it is pending again (not hidden as replayed), one row with two attempts.
    assert rows(komas.database_path, "SELECT id, attempts, replayed_at FROM dead_letters") == [(letter_id, 2, None)]


def test_an_oversized_event_is_kept_bounded_and_is_not_replayed(komas: Komas, worker: WorkerProcess) -> None:
    """A 300 KB event over the event limit: its dead letter keeps 64 KiB, the size and hash say the rest."""
    huge = {**BotToggled(bot_id=1, active=True).to_wire(), "note": "x" * 300_000}
    body = dumps(huge)
    enqueue_raw(komas.client, komas.queue, encode_job([body]).body)
    wait_for(lambda: len(rows(komas.database_path, "SELECT id FROM dead_letters")) == 1, timeout=30)

    (letter,) = [json.loads(line) for line in komas("dlq", "list", "--json").output.splitlines()]
    assert "exceeds the limit" in letter["reason"]
    assert len(letter["payload"].encode()) == 64 * 1024
    assert letter["payload_truncated"] is True
    assert letter["payload_size"] == len(body)
    assert letter["payload_sha256"] == hashlib.sha256(body).hexdigest()

    result = komas("dlq", "replay", str(letter["id"]), "--timeout", "20")
    assert result.exit_code == 0, result.output
    assert f"dead letter {letter['id']}: skipped: only the first bytes of its {len(body)}-byte payload" in result.output


def test_without_a_worker_the_replay_is_queued_and_says_so(komas: Komas) -> None:
    result = komas("dlq", "replay", "1", "--timeout", "0.3")
    assert result.exit_code == 3, result.output
    assert "replay queued, not done" in result.output
    assert "no worker finished it within 0.3s" in result.output


def test_replay_and_drop_of_unknown_ids_fail_and_drop_deletes(komas: Komas, letters: list[str]) -> None:
    missing = komas("dlq", "replay", "999999", "--timeout", "20")
    assert missing.exit_code == 1
    assert "no such dead letter: [999999]" in missing.output

    (letter_id,) = rows(komas.database_path, "SELECT id FROM dead_letters WHERE reason LIKE '%not valid JSON%'")[0]
    dropped = komas("dlq", "drop", str(letter_id), "--timeout", "20")
    assert dropped.exit_code == 0, dropped.output
    assert f"dropped dead letter {letter_id}" in dropped.output
    assert rows(komas.database_path, f"SELECT id FROM dead_letters WHERE id = {letter_id}") == []
    assert len(rows(komas.database_path, "SELECT id FROM dead_letters")) == 1

    twice = komas("dlq", "drop", str(letter_id), "--timeout", "20")
    assert twice.exit_code == 1
    assert f"no dead letter {letter_id}" in twice.output


def test_a_dropped_dead_letters_id_is_never_given_again(komas: Komas, letters: list[str]) -> None:
    """SQLite handed the highest id out again after a drop: an operator's `dlq replay 4` then meant another letter."""
    highest = max(letter_ids(komas.database_path))
    dropped = komas("dlq", "drop", str(highest), "--timeout", "20")
    assert dropped.exit_code == 0, dropped.output

    enqueue_raw(komas.client, komas.queue, b"\x81 another job that is not JSON")
    wait_for(lambda: len(rows(komas.database_path, "SELECT id FROM dead_letters")) == 2, timeout=30)  # 2 - 1 + 1

    assert max(letter_ids(komas.database_path)) == highest + 1


def test_replay_needs_ids_or_all_but_not_both(komas: Komas) -> None:
    neither = komas("dlq", "replay")
    assert neither.exit_code == 2
    assert "give dead-letter ids or --all" in neither.output
    both = komas("dlq", "replay", "1", "--all")
    assert both.exit_code == 2
