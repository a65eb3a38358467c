"""`POST /api/ops/{name}`: a maintenance job (as `komas ops NAME`), run by the worker; the token is required.

The answer is the job's report (200, `ok` says whether it did its work) when the worker finishes
within `KOMAS_API_WAIT_S`, else 202 with the job id: `GET /api/ops/jobs/{job_id}` gives the report
once it is there.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from pydantic import ValidationError

from worker.api.auth import WriteAuth
from worker.api.deps import ResourcesDep
from worker.api.errors import REDIS_ERRORS, ApiError
from worker.api.routes._responses import WRITE
from worker.ops.catalogue import OPERATIONS
from worker.runtime.client import ResultNotFound, job_handle
from worker.runtime.maintenance_jobs import MAINTENANCE_JOB

router = APIRouter(prefix="/api/ops", tags=["maintenance"], dependencies=[WriteAuth])

Options = Annotated[
    dict[str, Any] | None,
    Body(description='The operation\'s options, as `komas ops NAME --help` lists them, e.g. {"dry_run": true}.'),
]


def _require_token(resources: ResourcesDep) -> None:
    if resources.config.api_token is None:
        raise ApiError(403, "maintenance over HTTP needs a token: set KOMAS_API_TOKEN (or use `komas ops` locally)")


@router.post("/{name}", responses={**WRITE, 404: {"description": "No such operation."}})
async def run_operation(name: str, resources: ResourcesDep, response: Response, options: Options = None) -> Any:
    _require_token(resources)
    operation = OPERATIONS.get(name)
    if operation is None:
        raise ApiError(404, f"no operation {name[:60]!r}; known: {', '.join(OPERATIONS)}")
    try:
        checked = operation.options.model_validate(options or {}).model_dump(exclude_defaults=True)
    except ValidationError as exc:
        raise ApiError(422, [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]) from None
    config = resources.config
    try:
        job = await resources.redis.enqueue_job(
            MAINTENANCE_JOB, name, checked, _queue_name=config.queue, _expires=config.job_ttl_s
        )
        assert job is not None  # a fresh random job id never collides
        try:
            return await job.result(timeout=config.api_wait_s, poll_delay=0.05)
        except TimeoutError:
            response.status_code = 202
            return {"job_id": job.job_id, "status": "queued", "result": f"/api/ops/jobs/{job.job_id}"}
    except REDIS_ERRORS as exc:
        raise ApiError(503, f"Redis is unavailable: {exc}") from None
    except Exception as exc:  # the job failed in the worker (arq re-raises its exception here)
        raise ApiError(502, f"the worker failed {name}: {type(exc).__name__}: {exc}"[:500]) from None


@router.get("/jobs/{job_id}", responses={**WRITE, 404: {"description": "No such job, or its report has expired."}})
async def operation_result(job_id: str, resources: ResourcesDep, response: Response) -> Any:
    _require_token(resources)
    job = job_handle(resources.redis, job_id, resources.config.queue)
    try:
        info = await job.result_info()
        if info is None:
            if await job.status() == "not_found":
                raise ApiError(404, f"no maintenance job {job_id[:80]!r}, or its report has expired")
            response.status_code = 202
            return {"job_id": job_id, "status": "queued"}
        if not info.success:
            return {"ok": False, "error": f"the job failed in the worker: {type(info.result).__name__}: {info.result}"}
        return info.result
    except ResultNotFound:
        raise ApiError(404, f"no maintenance job {job_id[:80]!r}") from None
    except REDIS_ERRORS as exc:
        raise ApiError(503, f"Redis is unavailable: {exc}") from None
