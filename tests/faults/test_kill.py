"""`kill -9` of the worker while a stream flows: nothing lost, nothing applied twice.

The kills land anywhere: between jobs, inside a transaction, and (through the failpoints) right
before COMMIT and right after it, before arq records the job as done, the case that makes the
re-run job meet its own events as duplicates.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from events import BaseEvent
from tests.faults.harness import (
    Rig,
    check_invariants,
    check_outcome,
    column,
    event_ids,
)
from worker.failpoints import EXIT_CODE

STREAM_EVENTS = 5200
MIN_KILLS = 20
PUBLISH_FOR_S = 30.0


def paced(jobs: Sequence[Sequence[BaseEvent]], seconds: float) -> Iterator[Sequence[BaseEvent]]:
    """Hand out jobs evenly over `seconds`, so the stream is still flowing while the worker is killed."""
    pause = seconds / max(len(jobs), 1)
    for job in jobs:
        yield job
        time.sleep(pause)


def test_a_job_killed_right_after_its_commit_finds_its_events_applied(rig: Rig) -> None:
    """The job re-runs after its commit died with the worker: its events are duplicates, never dead letters.

    With `KOMAS_MAX_CRASHES=1` the re-run is already past the crash limit, so it takes the path that
    dead-letters a lone event that keeps crashing the worker; an event that was committed must not be.
    """
    builder = rig.builder(1)
    lone = builder.created()
    pair = [builder.created(), builder.backtest()]
    worker = rig.worker(max_crashes=1)
    rig.publish([[lone]])
    worker.start(KOMAS_FAILPOINTS="after_commit=1")
    deadline = time.monotonic() + 30
    while worker.alive and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker.reap() == EXIT_CODE
    assert column(rig.db_path, "SELECT event_id FROM processed_events") == event_ids([lone])

    rig.publish([pair])
    worker.start()
    ids = event_ids([lone, *pair])
    rig.drain(ids, timeout=30, worker=worker)
    check_invariants(rig.db_path, ids)
    check_outcome(rig.db_path, builder)
