"""The worker's arq settings and its one change to arq's Worker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from arq import Worker

from worker.config import Config
from worker.runner import KomasWorker, build_worker


async def test_jobs_running_here_are_not_checked_again_in_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    offered: list[bytes] = []

    async def arqs_own(self: Worker, job_ids: list[bytes]) -> None:
        offered.extend(job_ids)

    monkeypatch.setattr(Worker, "start_jobs", arqs_own)
    worker = build_worker(Config(queue="komas:test:runner"), burst=True)
    assert isinstance(worker, KomasWorker)
    loop = asyncio.get_running_loop()
    running: asyncio.Future[Any] = loop.create_future()
    finished: asyncio.Future[Any] = loop.create_future()
    finished.set_result(None)
    worker.tasks.update({"running": running, "finished": finished})  # type: ignore[dict-item]

    await worker.start_jobs([b"running", b"finished", b"new"])

    assert offered == [b"finished", b"new"]  # a finished one may still be queued: arq decides
    running.cancel()


def test_worker_options_follow_the_configuration() -> None:
    config = Config(queue="q", max_jobs=7, poll_delay_s=0.02, lock_ttl_s=6)
    worker = build_worker(config, burst=True)
    assert (worker.queue_name, worker.max_jobs, worker.poll_delay_s) == ("q", 7, 0.02)
    assert worker.in_progress_timeout_s == 6  # a killed worker's job runs again after the short lock
    assert worker.log_results is False
