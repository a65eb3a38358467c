"""Poison: jobs that are not JSON, name unknown functions, events that fail validation or are too large.

Each is dead-lettered with its payload and reason; the good events around them all apply.
"""

from __future__ import annotations

from typing import Any

from events import BotToggled
from events.wire import dumps, encode_job
from tests.faults.harness import Rig, check_invariants, check_outcome, column, enqueue_raw, event_ids

MAX_EVENT_BYTES = 4096
MAX_BATCH = 50


def test_poison_is_dead_lettered_and_the_good_events_around_it_apply(rig: Rig) -> None:
    builder = rig.builder(5)
    good = builder.mixed(120)
    invalid = {**builder.created().to_wire(), "entry_price": -3.0}
    builder.expected.signals.pop(invalid["signal_uid"])
    oversized = {**builder.created().to_wire(), "indicator_values": {"blob": "x" * MAX_EVENT_BYTES}}
    builder.expected.signals.pop(oversized["signal_uid"])
    not_an_object: Any = 42
    in_unknown_job = BotToggled(bot_id=1, active=True)  # arrives inside a job for an unknown function
    over_limit = [BotToggled(bot_id=2, active=False).to_wire() for _ in range(MAX_BATCH + 1)]

    worker = rig.worker(max_event_bytes=MAX_EVENT_BYTES, max_batch=MAX_BATCH)
    client = rig.redis.client()
    try:
        mixed_job = [
            *(e.to_wire() for e in good[:20]),
            invalid,
            oversized,
            not_an_object,
            *(e.to_wire() for e in good[20:40]),
        ]
        enqueue_raw(client, rig.queue, encode_job([dumps(e) for e in mixed_job]).body)
        enqueue_raw(client, rig.queue, b"\x80\x04\x95 pickled, not JSON")
        enqueue_raw(client, rig.queue, b'{"hello": "world"}')
        unknown: dict[str, Any] = {
            "t": None,
            "f": "drop_all_tables",
            "a": [[in_unknown_job.to_wire()]],
            "k": {},
            "et": 1,
        }
        enqueue_raw(client, rig.queue, dumps(unknown))
        enqueue_raw(client, rig.queue, encode_job([dumps(e) for e in over_limit]).body)
        for start in range(40, len(good), MAX_BATCH):
            enqueue_raw(
                client, rig.queue, encode_job([dumps(e.to_wire()) for e in good[start : start + MAX_BATCH]]).body
            )
    finally:
        client.close()
    worker.start()

    expected_dead = [invalid["event_id"], oversized["event_id"]]
    ids = [*event_ids(good), *expected_dead]
    rig.drain(ids, timeout=60, worker=worker)
    # Five dead letters without an event id: the pickle, the non-job JSON, the unknown function, the `42`,
    # and the batch over the limit (one row for all its events).
    check_invariants(rig.db_path, ids, expected_dead, raw_dead_letters=5)
    check_outcome(rig.db_path, builder)
    letters = column(rig.db_path, "SELECT event_id || '|' || reason FROM dead_letters WHERE event_id IS NOT NULL")
    reasons = {row.split("|", 1)[0]: row.split("|", 1)[1] for row in letters}
    assert "entry_price" in reasons[invalid["event_id"]]
    assert f"exceeds the limit of {MAX_EVENT_BYTES}" in reasons[oversized["event_id"]]
    raw = column(rig.db_path, "SELECT reason || ' ## ' || payload FROM dead_letters WHERE event_id IS NULL")
    assert any("not valid JSON" in row and "pickled, not JSON" in row for row in raw), raw
    assert any("not an arq job" in row for row in raw), raw
    assert any("'drop_all_tables'" in row and str(in_unknown_job.event_id) in row for row in raw), raw
    assert any("expected a JSON object" in row for row in raw), raw
    assert any(f"over the limit of {MAX_BATCH}" in row and over_limit[-1]["event_id"] in row for row in raw), raw
    assert str(in_unknown_job.event_id) not in column(rig.db_path, "SELECT event_id FROM processed_events")
    assert worker.terminate() == 0
