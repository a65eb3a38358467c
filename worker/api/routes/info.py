"""`GET /api/db/info`: what the database is and holds."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.engine import make_url

from worker.api import queries
from worker.api.auth import ReadAuth
from worker.api.deps import ConfigDep, ReadSession
from worker.api.routes._responses import READ
from worker.api.schemas import DatabaseInfo
from worker.runtime.status import database_size

router = APIRouter(prefix="/api/db", tags=["database"], dependencies=[ReadAuth], responses=READ)


@router.get("/info", response_model=DatabaseInfo)
async def info(session: ReadSession, config: ConfigDep) -> DatabaseInfo:
    url = make_url(config.database_url)
    applied, last = await queries.applied_events(session)
    return DatabaseInfo(
        backend=url.get_backend_name(),
        database=url.database,
        size_bytes=database_size(config.database_url),
        counts=await queries.table_counts(session),
        applied_events=applied,
        last_applied_at=last,
    )
