"""The worker's arq settings, its polling and its garbage-collection tuning."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.config import Config
from worker.runtime.komas_worker import KomasWorker
from worker.runtime.runner import (
    BUSY_POLL_DELAY_S,
    HEALTH_CHECK_INTERVAL_S,
    WorkerSettings,
    build_worker,
    warm_connections,
)


def test_worker_options_follow_the_configuration() -> None:
    config = Config(queue="q", max_jobs=7, poll_delay_s=0.02, lock_ttl_s=6)
    worker = build_worker(config, burst=True)
    assert isinstance(worker, KomasWorker)
    assert (worker.queue_name, worker.max_jobs) == ("q", 7)
    assert (worker.poll_delay_s, worker.idle_poll_delay_s) == (BUSY_POLL_DELAY_S, 0.02)
    assert worker.in_progress_timeout_s == 6  # a killed worker's job runs again after the short lock
    assert worker.log_results is False
    assert worker.health_check_interval == HEALTH_CHECK_INTERVAL_S  # `komas status` sees a live line, not an hour old
    assert vars(WorkerSettings)["health_check_interval"] == HEALTH_CHECK_INTERVAL_S  # the `arq` command line's too


def test_connections_opened_ahead_follow_max_jobs_up_to_a_bound() -> None:
    assert warm_connections(Config(max_jobs=3)) == 5
    assert warm_connections(Config(max_jobs=64)) == 18  # units share round trips: not one per job


def test_gc_is_tuned_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from worker.runtime.runner import GC_YOUNG_THRESHOLD, tune_gc

    freezes: list[int] = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(1))  # freezing the test process would be permanent
    original = gc.get_threshold()
    gc.set_threshold(700, *original[1:])
    try:
        tune_gc()
        tune_gc()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *original[1:])
        assert freezes == [1]
    finally:
        gc.set_threshold(*original)


def test_maintenance_and_operator_jobs_never_join_a_unit_of_event_jobs(tmp_path: Path) -> None:
    """A unit frees its slots when its last job ends: a backup in one held its mates' slots for minutes."""
    built = build_worker(Config(database_url=f"sqlite+aiosqlite:///{tmp_path}/k.db"))
    assert isinstance(built, KomasWorker)
    assert built.run_alone == {"maintenance", "dlq_replay", "dlq_drop"}
