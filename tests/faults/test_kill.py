"""`kill -9` of the worker while a stream flows: nothing lost, nothing applied twice.

The kills land anywhere: between jobs, inside a transaction, and (through the failpoints) right
before COMMIT and right after it, before arq records the job as done, the case that makes the
re-run job meet its own events as duplicates.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing

import pytest

from events import BaseEvent
from tests.faults.harness import (
    Rig,
    check_invariants,
    check_no_partial,
    check_outcome,
    column,
    event_ids,
    random_chunks,
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


@pytest.mark.slow
@pytest.mark.timeout(360)  # the default 120 s is for unit tests; its own deadlines are shorter
def test_kill_9_at_random_points_while_a_stream_flows(rig: Rig) -> None:
    rng = random.Random(9)
    builder = rig.builder(9)
    events = builder.mixed(STREAM_EVENTS)
    ids = event_ids(events)
    jobs = random_chunks(events, rng, 1, 60)
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            rig.publish(paced(jobs, PUBLISH_FOR_S), retry_until=time.monotonic() + 120)
        except BaseException as exc:  # surfaced in the test thread below
            errors.append(exc)

    publisher = threading.Thread(target=produce, name="publisher", daemon=True)
    worker = rig.worker()
    publisher.start()
    kills = after_commit_exits = before_commit_exits = 0
    # The kill loop is bounded by a deadline; its pauses are the fault injection, not waits for work.
    deadline = time.monotonic() + 150
    while (kills < MIN_KILLS or publisher.is_alive()) and time.monotonic() < deadline:
        mode = kills % 4
        if mode == 1:
            worker.start(KOMAS_FAILPOINTS="after_commit=0.5")  # high enough that a short run meets it
        elif mode == 3:
            worker.start(KOMAS_FAILPOINTS="before_commit=0.5")
        else:
            worker.start()
        worker.wait_ready(rig.redis)
        until = time.monotonic() + rng.uniform(0.3, 2.5)
        while worker.alive and time.monotonic() < until:
            time.sleep(0.02)
        code = worker.reap()
        if code is None:
            worker.kill()
        elif code == EXIT_CODE and mode == 1:
            after_commit_exits += 1
        elif code == EXIT_CODE and mode == 3:
            before_commit_exits += 1
        else:
            pytest.fail(f"the worker exited with {code}:\n{worker.log_tail()}")
        kills += 1
        if kills % 5 == 0:
            check_no_partial(rig.db_path, builder.prefix)
    publisher.join(timeout=60)
    assert not errors, errors
    assert not publisher.is_alive()
    assert kills >= MIN_KILLS
    assert after_commit_exits >= 1, "no run died right after its COMMIT"
    assert before_commit_exits >= 1, "no run died right before its COMMIT"

    with closing(rig.redis.client()) as client:  # a killed run's health key would say "ready" too early
        client.delete(worker.queue + ":health-check")
    worker.start()
    assert worker.wait_ready(rig.redis)  # SIGTERM before the handlers are installed would just kill it
    rig.drain(ids, timeout=120, worker=worker)
    check_invariants(rig.db_path, ids)
    check_outcome(rig.db_path, builder)
    check_no_partial(rig.db_path, builder.prefix)
    assert worker.terminate() == 0


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
