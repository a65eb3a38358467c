"""Disk full: the database file cannot grow (SQLite's `max_page_count`, set on every pooled connection).

Jobs fail with "database or disk is full", nothing is half-applied, their events go back on the queue
with back-off, and once the space is back the same worker process drains the backlog.
"""

from __future__ import annotations

import time

from events import SignalCreated
from tests.faults.harness import (
    PAGE_LIMITED_MAIN,
    Rig,
    check_invariants,
    check_no_partial,
    check_outcome,
    column,
    event_ids,
    wait_until,
)


def test_jobs_retry_while_the_database_cannot_grow_and_drain_once_it_can(rig: Rig) -> None:
    builder = rig.builder(6)
    before = builder.mixed(50, close_all=False)
    during = builder.mixed(300)
    for event in during:  # large rows, so the file must grow: ~300 kB more than it has
        if isinstance(event, SignalCreated):
            event.indicator_values["history"] = [f"{n / 7:.6f}" for n in range(120)]
    limit_file = rig.directory / "page_limit"
    worker = rig.worker(main=PAGE_LIMITED_MAIN, test_page_limit_file=str(limit_file))
    worker.start()
    rig.publish([before])
    rig.drain(event_ids(before), timeout=30, worker=worker)

    limit_file.write_text("1")  # below the current size: the file stays as large as it is now
    rig.publish([during[n : n + 25] for n in range(0, len(during), 25)])
    # A failed commit round first tells each job to try alone; the alone attempt meets the full disk too
    # and puts its events back on the queue. Space comes back only once that has happened.
    wait_until(lambda: "re-enqueued" in worker.log_text(), time.monotonic() + 30, "a job to be re-enqueued")
    assert "database or disk is full" in worker.log_text()
    check_no_partial(rig.db_path, builder.prefix)
    stuck = set(event_ids(during)) - set(column(rig.db_path, "SELECT event_id FROM processed_events"))
    assert stuck, "every event applied although the database could not grow"

    limit_file.unlink()  # space is back
    ids = event_ids([*before, *during])
    rig.drain(ids, timeout=90, worker=worker)
    check_invariants(rig.db_path, ids)
    check_outcome(rig.db_path, builder)
    check_no_partial(rig.db_path, builder.prefix)
    assert worker.terminate() == 0
