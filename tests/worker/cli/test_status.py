"""`komas status`: what an operator sees with the worker down, Redis down, or no database yet."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from events.wire import JOB_KEY_PREFIX, dumps, encode_job
from tests.services import free_port
from tests.worker.cli.conftest import Komas

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "samples" / "trading.jsonl"


def status_json(komas: Komas, expect_exit: int = 0) -> dict[str, Any]:
    return komas.json("status", "--json", expect_exit=expect_exit)


def enqueue_raw(komas: Komas, events: list[dict[str, Any]]) -> str:
    """A job as any producer writes it (README, wire format); the worker must dead-letter what is invalid."""
    job = encode_job([dumps(event) for event in events])
    komas.client.set(JOB_KEY_PREFIX + job.job_id, job.body, px=60_000)
    komas.client.zadd(komas.queue, {job.job_id: job.score})
    return job.job_id


def test_status_with_the_worker_down(komas: Komas) -> None:
    # Earlier, a worker ran and dead-lettered two invalid events; then it went away.
    enqueue_raw(komas, [{"type": "bot.toggled", "bot_id": -1, "active": True}, {"type": "no.such.event"}])
    komas.run_worker()
    assert komas.client.exists(f"{komas.queue}:health-check") == 0  # a worker that stops cleanly says so
    # Now events pile up: two jobs wait.
    published_at = time.time()
    assert komas("publish", "-f", str(SAMPLE), "--batch", "3").exit_code == 0
    waited = time.time() - published_at

    report = status_json(komas)

    assert set(report) == {"queue", "database", "maintenance"}
    queue, database = report["queue"], report["database"]
    assert report["maintenance"]["last_runs"] == {}  # nothing maintained yet
    assert report["maintenance"]["last_backup"] is None
    assert set(queue) == {"queue", "depth", "oldest_age_s", "worker", "writer"}
    assert (queue["queue"], queue["depth"], queue["worker"]) == (komas.queue, 2, None)
    assert queue["writer"] == {"partition": "main", "active": None, "standbys": []}  # a stopped worker let go
    assert 0 <= queue["oldest_age_s"] <= waited + 5
    assert set(database) == {"applied_events", "parked_events", "dead_letters", "last_applied", "database_bytes"}
    assert (database["applied_events"], database["parked_events"], database["dead_letters"]) == (0, 0, 2)
    assert database["last_applied"] is None
    on_disk = sum(p.stat().st_size for p in komas.database_path.parent.glob("komas.db*") if not p.name.endswith("shm"))
    assert database["database_bytes"] == on_disk > 0


def test_the_oldest_age_is_the_age_of_the_first_queued_job(komas: Komas) -> None:
    ten_minutes_ago = int((time.time() - 600) * 1000)
    job_id = uuid.uuid4().hex
    komas.client.set(JOB_KEY_PREFIX + job_id, b"{}", px=60_000)
    komas.client.zadd(komas.queue, {job_id: ten_minutes_ago})
    komas.job_ids.add(job_id)
    assert komas("db", "upgrade").exit_code == 0
    queue = status_json(komas)["queue"]
    assert queue["depth"] == 1
    assert 600 <= queue["oldest_age_s"] < 660


def test_the_table_shows_every_line(komas: Komas) -> None:
    assert komas("db", "upgrade").exit_code == 0
    assert komas("publish", "bot.toggled", "--data", '{"bot_id": 1, "active": true}').exit_code == 0
    result = komas("status")
    assert result.exit_code == 0, result.output
    labels = ("queued jobs", "oldest queued", "no worker heartbeat", "no worker holds the writer lease", "standbys")
    for label in (*labels, "dead letters", "last applied", "bytes"):
        assert label in result.stdout


def test_no_database_yet_still_shows_the_queue(komas: Komas) -> None:
    assert komas("publish", "bot.toggled", "--data", '{"bot_id": 1, "active": true}').exit_code == 0
    report = status_json(komas, expect_exit=1)
    assert report["queue"]["depth"] == 1
    assert "komas db upgrade" in report["database"]["error"]
    assert not komas.database_path.exists()  # looking created no empty database
    table = komas("status")
    assert table.exit_code == 1
    assert "queued jobs" in table.stdout
    assert "no database at" in table.stderr


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "table"])
def test_redis_not_answering_is_a_clear_error(komas: Komas, monkeypatch: pytest.MonkeyPatch, as_json: bool) -> None:
    assert komas("db", "upgrade").exit_code == 0
    url = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setenv("KOMAS_REDIS_URL", url)

    result = komas("status", *(["--json"] if as_json else []))

    assert result.exit_code == 1
    assert result.stderr.startswith(f"komas: Redis at {url} does not answer")
    assert "Traceback" not in result.output
    if as_json:
        report = json.loads(result.stdout)
        assert report["queue"]["error"].startswith(f"Redis at {url}")
        assert report["database"]["dead_letters"] == 0  # the half that can be read still is
    else:
        assert "dead letters" in result.stdout
