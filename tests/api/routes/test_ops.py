"""`POST /api/ops/{name}` and `GET /api/ops/jobs/{id}`: maintenance over HTTP, run by a real worker."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from tests.api.conftest import AUTH, RunningWorker, serve
from worker.api import create_app
from worker.config import Config


async def test_an_operation_answers_with_the_workers_report(client: httpx.AsyncClient, worker: RunningWorker) -> None:
    response = await client.post("/api/ops/integrity", json={"full": True}, headers=AUTH)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["ok"] is True
    assert report["operation"] == "integrity"
    assert report["check_kind"] == "integrity_check"


async def test_a_backup_through_the_api_lands_in_the_backup_directory(
    client: httpx.AsyncClient, worker: RunningWorker, migrated: Config
) -> None:
    report = (await client.post("/api/ops/backup", headers=AUTH)).json()
    assert report["ok"] is True, report
    database = make_url(migrated.database_url).database
    assert database
    assert Path(report["file"]).parent == Path(database).parent / "backups"


async def test_unknown_operations_and_bad_options_are_refused_before_queueing(client: httpx.AsyncClient) -> None:
    unknown = await client.post("/api/ops/drop-tables", headers=AUTH)
    assert unknown.status_code == 404
    assert "known: backup" in unknown.text
    bad = await client.post("/api/ops/purge", json={"dry_run": "yes"}, headers=AUTH)
    assert bad.status_code == 422
    extra = await client.post("/api/ops/purge", json={"everything": True}, headers=AUTH)
    assert extra.status_code == 422
    assert (await client.post("/api/ops/backup")).status_code == 401


async def test_without_a_token_maintenance_over_http_is_refused(migrated: Config) -> None:
    open_config = migrated.model_copy(update={"api_token": None})
    async with serve(create_app(open_config)) as client:
        response = await client.post("/api/ops/backup")
    assert response.status_code == 403
    assert "KOMAS_API_TOKEN" in response.text


async def test_without_a_worker_the_answer_is_202_and_the_job_can_be_looked_up(migrated: Config) -> None:
    impatient = migrated.model_copy(update={"api_wait_s": 0.2})
    async with serve(create_app(impatient)) as client:
        response = await client.post("/api/ops/optimize", headers=AUTH)
        assert response.status_code == 202
        job_id = response.json()["job_id"]
        looked_up = await client.get(f"/api/ops/jobs/{job_id}", headers=AUTH)
        assert looked_up.status_code == 202
        assert looked_up.json()["status"] == "queued"
        missing = await client.get("/api/ops/jobs/no-such-job", headers=AUTH)
        assert missing.status_code == 404


async def test_status_shows_the_queue_and_each_maintenance_jobs_last_and_next_run(
    client: httpx.AsyncClient, worker: RunningWorker
) -> None:
    assert (await client.post("/api/ops/backup", headers=AUTH)).json()["ok"] is True
    status = (await client.get("/api/status")).json()
    assert status["queue"]["depth"] >= 0
    maintenance = status["maintenance"]
    assert maintenance["last_runs"]["backup"]["ok"] is True
    assert maintenance["last_backup"]["file"] == maintenance["last_runs"]["backup"]["file"]
    assert set(maintenance["next_runs"]) == {"backup", "checkpoint", "optimize", "purge"}
    assert maintenance["dedup_window_s"] > 0
