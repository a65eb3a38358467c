"""A property-based state machine: publish, duplicate, reorder, kill and restart, in any order.

Hypothesis drives a real worker process on a private Redis and a fresh SQLite file per example. The
model is a plain dict of signals and per-bot totals; whatever the sequence of steps, once everything
published has drained the database equals the model, and the fault suite's invariants hold.
"""

from __future__ import annotations

import random
import time
import uuid

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from events import BaseEvent
from tests.faults.harness import (
    Rig,
    StreamBuilder,
    WorkerProcess,
    check_invariants,
    check_no_partial,
    check_outcome,
    column,
    drain,
    event_ids,
    publish,
    seed_database,
    worker_env,
)

EXAMPLES = 15
STEPS = 15


class WorkerMachine(RuleBasedStateMachine):
    """One example: its own database and queue on the test's Redis, one worker process."""

    rig: Rig

    def __init__(self) -> None:
        super().__init__()
        name = uuid.uuid4().hex[:8]
        self.db_path = self.rig.directory / f"sm-{name}.db"
        self.queue = f"komas:sm:{name}"
        self.builder = StreamBuilder(seed_database(self.db_path), random.Random(0))
        self.pending: list[BaseEvent] = []
        self.published: list[BaseEvent] = []
        env = worker_env(self.db_path, self.rig.redis.url, self.queue)
        self.worker = WorkerProcess(env, self.rig.directory / f"sm-{name}.log")
        self.rig.workers.append(self.worker)  # killed by the fixture even if the example fails
        self.worker.start()

    @initialize(seed=st.integers(0, 2**16))
    def choose_values(self, seed: int) -> None:
        self.builder.rng.seed(seed)

    @rule(count=st.integers(1, 8))
    def create_signals(self, count: int) -> None:
        self.pending += [self.builder.created() for _ in range(count)]

    @precondition(lambda self: bool(self.builder.open_uids))
    @rule(data=st.data())
    def close_signal(self, data: st.DataObject) -> None:
        uid = data.draw(st.sampled_from(sorted(self.builder.open_uids)), label="uid")
        self.pending.append(self.builder.closed(uid))

    @rule()
    def backtest_and_toggle(self) -> None:
        self.pending += [self.builder.backtest(), self.builder.toggled()]

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data(), reorder=st.booleans(), job_size=st.integers(1, 10))
    def publish_pending(self, data: st.DataObject, reorder: bool, job_size: int) -> None:
        """Publish what is pending, possibly shuffled (a close may go before its create)."""
        events = data.draw(st.permutations(self.pending), label="order") if reorder else list(self.pending)
        publish(self.rig.redis.url, self.queue, [events[n : n + job_size] for n in range(0, len(events), job_size)])
        self.published += events
        self.pending = []

    @precondition(lambda self: bool(self.published))
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        """Publish some events again under new job ids."""
        again = data.draw(st.lists(st.sampled_from(self.published), min_size=1, max_size=12), label="again")
        publish(self.rig.redis.url, self.queue, [again])

    @rule()
    def kill_and_restart(self) -> None:
        self.worker.kill()
        self.worker.start()

    def teardown(self) -> None:
        try:
            if self.pending:
                self.publish_all()
            ids = event_ids(self.published)
            if not self.worker.alive:
                self.worker.reap()
                self.worker.start()
            drain(self.db_path, self.rig.redis, self.queue, ids, _deadline(40), self.worker)
            check_invariants(self.db_path, ids)
            check_outcome(self.db_path, self.builder)
            check_no_partial(self.db_path, self.builder.prefix)
            assert sorted(column(self.db_path, "SELECT event_id FROM processed_events")) == sorted(set(ids))
        finally:
            self.worker.kill()

    def publish_all(self) -> None:
        publish(self.rig.redis.url, self.queue, [self.pending])
        self.published += self.pending
        self.pending = []


def _deadline(seconds: float) -> float:
    return time.monotonic() + seconds


@pytest.mark.slow
@pytest.mark.timeout(360)  # the default 120 s is for unit tests; its own deadlines are shorter
def test_any_sequence_of_publish_duplicate_reorder_kill_ends_equal_to_the_model(rig: Rig) -> None:
    WorkerMachine.rig = rig
    run_state_machine_as_test(
        WorkerMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            # Shrinking would replay examples with a worker each: a failure is reported unshrunk, within budget.
            phases=(Phase.explicit, Phase.generate),
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
