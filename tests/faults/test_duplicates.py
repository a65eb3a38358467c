"""Duplicates: the same events published 2-3 times under different job ids, some concurrently, then replayed.

Every id is applied once: one `processed_events` row each, stats counted once.
"""

from __future__ import annotations

import random
import re
import threading

from events import BaseEvent
from tests.faults.harness import Rig, check_invariants, check_outcome, column, event_ids, random_chunks


def test_events_published_several_times_and_replayed_apply_once(rig: Rig) -> None:
    rng = random.Random(3)
    builder = rig.builder(3)
    events = builder.mixed(800)
    ids = event_ids(events)
    worker = rig.worker()
    worker.start()

    # Twice in sequence, chunked differently (different job ids, different batch boundaries).
    rig.publish(random_chunks(events[:400], rng, 1, 50))
    rig.publish(random_chunks(events[:400], rng, 1, 50))
    # Three publishers at once over the rest, each with its own chunking.
    errors: list[BaseException] = []

    def publish_copy(seed: int) -> None:
        try:
            rig.publish(random_chunks(events[400:], random.Random(seed), 1, 80))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=publish_copy, args=(seed,)) for seed in (31, 32, 33)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    rig.drain(ids, timeout=90, worker=worker)
    stats_before = column(rig.db_path, "SELECT total_signals || ':' || total_profit FROM bots ORDER BY id")

    # A full replay of everything, in one big batch per job this time.
    replay: list[list[BaseEvent]] = random_chunks(events, rng, 500, 1000)
    rig.publish(replay)
    rig.drain(ids, timeout=90, worker=worker)

    check_invariants(rig.db_path, ids)
    check_outcome(rig.db_path, builder)
    assert column(rig.db_path, "SELECT count(*) FROM processed_events") == [len(ids)]
    assert column(rig.db_path, "SELECT total_signals || ':' || total_profit FROM bots ORDER BY id") == stats_before
    assert worker.terminate() == 0
    assert re.search(r"[1-9][0-9]* duplicate", worker.log_text())  # the INFO summary, flushed at the latest at stop
