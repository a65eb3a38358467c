"""Two `komas worker` processes on one database: one writes, the other waits as a standby and takes over.

The active worker is killed with `kill -9` again and again while a stream flows (the killed one is
started again and becomes a standby in its turn): each time a standby holds the lease within 15 s,
and in the end every event is applied exactly once. A worker stopped with SIGTERM hands the lease
over at once.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from contextlib import closing

import pytest
import redis

from tests.faults.harness import (
    KOMAS_MAIN,
    Rig,
    WorkerProcess,
    check_invariants,
    check_outcome,
    event_ids,
    random_chunks,
    wait_until,
)
from tests.faults.test_kill import paced
from worker.runtime.lease import lease_key

STREAM_EVENTS = 3000
KILLS = 10
TAKEOVER_S = 15.0


def holder_pid(client: redis.Redis, key: str) -> int | None:
    pid = client.hget(key, "pid")
    return None if pid is None else int(pid)  # type: ignore[arg-type]


def status_json(worker: WorkerProcess) -> dict[str, object]:
    """`komas status --json` as an operator runs it, with this rig's settings."""
    result = subprocess.run(
        [sys.executable, "-c", KOMAS_MAIN, "status", "--json"], env=worker.env, capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_a_standby_takes_over_each_time_the_active_worker_is_killed(rig: Rig) -> None:
    rng = random.Random(11)
    builder = rig.builder(11)
    events = builder.mixed(STREAM_EVENTS)
    ids = event_ids(events)
    jobs = random_chunks(events, rng, 1, 40)
    key = lease_key(f"sqlite+aiosqlite:///{rig.db_path}")
    workers = [rig.worker(), rig.worker()]
    with closing(rig.redis.client()) as client:
        workers[0].start()
        assert workers[0].wait_ready(rig.redis), workers[0].log_tail()
        workers[1].start()
        wait_until(lambda: "waiting as a standby" in workers[1].log_text(), time.monotonic() + 30, "a standby")
        status = status_json(workers[0])
        writer = status["queue"]["writer"]  # type: ignore[index]
        assert writer["active"]["pid"] == workers[0].process.pid  # type: ignore[union-attr]
        assert [standby["pid"] for standby in writer["standbys"]] == [workers[1].process.pid]  # type: ignore[union-attr]

        errors: list[BaseException] = []

        def produce() -> None:
            try:
                rig.publish(paced(jobs, 30.0), retry_until=time.monotonic() + 120)
            except BaseException as exc:  # surfaced in the test thread below
                errors.append(exc)

        publisher = threading.Thread(target=produce, name="publisher", daemon=True)
        publisher.start()
        takeovers: list[float] = []
        for _ in range(KILLS):
            active_pid = holder_pid(client, key)
            active = next(w for w in workers if w.process is not None and w.process.pid == active_pid)
            time.sleep(rng.uniform(0.3, 2.0))  # fault injection: let it work a while, then kill it
            killed_at = time.monotonic()
            active.kill()
            active.start()  # back as a standby
            wait_until(
                lambda dead=active_pid: holder_pid(client, key) not in (None, dead),
                killed_at + TAKEOVER_S,
                "a standby to take the lease over",
            )
            takeovers.append(time.monotonic() - killed_at)
        publisher.join(timeout=120)
        assert not errors, errors
        rig.drain(ids, timeout=120)

        # A stopping worker hands the lease over at once: no waiting for its TTL.
        active_pid = holder_pid(client, key)
        active = next(w for w in workers if w.process is not None and w.process.pid == active_pid)
        assert active.terminate() == 0
        assert holder_pid(client, key) != active_pid
    check_invariants(rig.db_path, ids)
    check_outcome(rig.db_path, builder)
    assert max(takeovers) < TAKEOVER_S, takeovers
    for worker in workers:
        assert worker.log_text().count("waiting as a standby") >= 1
