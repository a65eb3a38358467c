"""Locked database: another process holds SQLite's write lock for a few seconds.

With a short busy timeout the worker's jobs fail to begin, put their events back on the queue with
back-off and apply once the lock is gone; with the default one it simply waits. Nothing is dropped.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.faults.harness import Rig, check_invariants, check_no_partial, check_outcome, column, event_ids

HOLD_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


@pytest.mark.parametrize(
    ("busy_timeout_ms", "hold_s", "requeued"),
    [pytest.param(300, 4.0, True, id="short-busy-timeout-requeues"), pytest.param(8000, 2.5, False, id="waits")],
)
def test_a_write_lock_held_elsewhere_delays_but_drops_nothing(
    rig: Rig, busy_timeout_ms: int, hold_s: float, requeued: bool
) -> None:
    builder = rig.builder(7)
    before, during = builder.mixed(100, close_all=False), builder.mixed(200)
    worker = rig.worker(busy_timeout_ms=busy_timeout_ms)
    worker.start()
    rig.publish([before])
    rig.drain(event_ids(before), timeout=30, worker=worker)
    applied_before = column(rig.db_path, "SELECT count(*) FROM processed_events")

    locker = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(rig.db_path), str(hold_s)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert locker.stdout is not None
        assert locker.stdout.readline().strip() == "locked"
        locked_at = time.monotonic()
        rig.publish([during[:100], during[100:]])
        time.sleep(min(1.0, hold_s / 3))  # part of the fault: jobs arrive while the lock is held
        if time.monotonic() - locked_at < hold_s - 0.5:
            assert column(rig.db_path, "SELECT count(*) FROM processed_events") == applied_before
        assert locker.wait(timeout=hold_s + 10) == 0
    finally:
        if locker.poll() is None:
            locker.kill()
            locker.wait()

    ids = event_ids([*before, *during])
    rig.drain(ids, timeout=60, worker=worker)
    check_invariants(rig.db_path, ids)
    check_outcome(rig.db_path, builder)
    check_no_partial(rig.db_path, builder.prefix)
    log = worker.log_text()
    assert ("database unavailable" in log and "re-enqueued" in log) == requeued
    assert worker.terminate() == 0
