"""Redis killed (`kill -9`) and restarted in the middle of the stream, append-only with fsync always.

Every job Redis acknowledged survives in the append-only file; the worker reconnects by itself
(`komas worker` rebuilds the arq worker after an outage); a producer whose publish failed publishes
the same events again. Nothing is lost, nothing applied twice.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from tests.faults.harness import Rig, check_invariants, check_outcome, event_ids, random_chunks
from tests.faults.test_kill import paced


@pytest.mark.slow
@pytest.mark.timeout(360)  # the default 120 s is for unit tests; its own deadlines are shorter
def test_redis_killed_and_restarted_mid_stream(rig: Rig) -> None:
    rng = random.Random(2)
    builder = rig.builder(2)
    events = builder.mixed(2000)
    ids = event_ids(events)
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            rig.publish(paced(random_chunks(events, rng, 1, 40), 12.0), retry_until=time.monotonic() + 90)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    worker = rig.worker()
    worker.start()
    worker.wait_ready(rig.redis)
    publisher = threading.Thread(target=produce, name="publisher", daemon=True)
    publisher.start()
    for down_for in (1.5, 0.5):
        time.sleep(rng.uniform(2.0, 4.0))  # part of the fault: where in the stream Redis dies
        rig.redis.kill()
        time.sleep(down_for)
        assert worker.alive, worker.log_tail()
        rig.redis.start()
    publisher.join(timeout=120)
    assert not errors, errors
    assert not publisher.is_alive()

    rig.drain(ids, timeout=120, worker=worker)
    check_invariants(rig.db_path, ids)
    check_outcome(rig.db_path, builder)
    assert "Redis unavailable" in worker.log_text()  # the supervisor really saw the outage
    assert worker.terminate() == 0
