"""`GET /api/status`: the queue, the writer and its standbys, and maintenance (as `komas status`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from worker.api.auth import ReadAuth
from worker.api.deps import ResourcesDep
from worker.api.errors import REDIS_ERRORS
from worker.api.routes._responses import READ
from worker.runtime.status import database_size, maintenance_status, queue_status

router = APIRouter(prefix="/api", tags=["status"], dependencies=[ReadAuth], responses=READ)


@router.get("/status")
async def status(resources: ResourcesDep) -> dict[str, Any]:
    config = resources.config
    try:
        queue: dict[str, Any] = await queue_status(config)
    except REDIS_ERRORS as exc:
        queue = {"queue": config.queue, "error": f"Redis does not answer: {exc}"}
    return {
        "queue": queue,
        "database": {"database_bytes": database_size(config.database_url)},
        "maintenance": await maintenance_status(config),
    }
