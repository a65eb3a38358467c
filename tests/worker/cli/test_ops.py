"""`komas ops ...` through typer's runner, answered by a real `komas worker` process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import WorkerProcess, worker_env
from tests.worker.cli.conftest import Komas
from worker import close_db, init_db


@pytest.fixture
def worker(komas: Komas, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A running `komas worker` on the test's queue and database, which refuses to rebuild purged stats."""

    async def migrate() -> None:
        await init_db(komas.database_url).ensure_schema()
        await close_db()

    asyncio.run(migrate())
    env = worker_env(komas.database_path, komas.redis_url, komas.queue, retention_signals_days=30)
    process = WorkerProcess(env, tmp_path / "worker.log")
    process.start()
    try:
        yield process
    finally:
        process.kill()


def test_ops_print_the_workers_report_and_exit_by_it(komas: Komas, worker: WorkerProcess) -> None:
    backup = komas.json("ops", "backup", "--keep", "3")
    assert backup["ok"] is True
    assert Path(backup["file"]).exists()
    assert backup["check"] == "ok"
    assert komas.json("ops", "integrity", "--full")["check_kind"] == "integrity_check"
    assert komas.json("ops", "purge", "--dry-run")["dry_run"] is True
    assert komas.json("ops", "checkpoint")["wal_bytes_after"] == 0
    refused = komas("ops", "rebuild-stats")
    assert refused.exit_code == 1
    assert "KOMAS_RETENTION_SIGNALS_DAYS" in refused.stderr
    assert komas.json("ops", "rebuild-stats", "--check")["fixed"] == 0


def test_without_a_worker_ops_exits_3_and_leaves_the_job_queued(komas: Komas) -> None:
    result = komas("ops", "optimize", "--timeout", "1")
    assert result.exit_code == 3
    assert "no worker finished it" in result.stderr
    assert len(komas.queued_job_ids()) == 1


def test_ops_help_lists_every_operation(komas: Komas) -> None:
    result = komas("ops", "--help")
    assert result.exit_code == 0
    for name in ("backup", "checkpoint", "optimize", "vacuum", "integrity", "purge", "rebuild-stats"):
        assert name in result.stdout
