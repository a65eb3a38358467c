"""`GET /health`: touches the database and Redis for real; 200 when both answer, 503 naming what is down.

The database must also be writable by the worker (`worker.api.writable`: files, directory, free disk),
checked without writing anything.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from sqlalchemy import select

from worker.api.deps import ResourcesDep, fresh_snapshot
from worker.api.resources import Resources
from worker.api.routes._responses import ANY
from worker.api.schemas import Health
from worker.api.writable import write_problem
from worker.store.models import ProcessedEvent

router = APIRouter(tags=["health"])
#: A check that takes longer than this counts as down: a health probe must answer quickly.
CHECK_TIMEOUT_S = 3.0


async def _database(resources: Resources) -> str:
    config = resources.config
    problem = await asyncio.to_thread(write_problem, config.database_url, config.api_min_free_bytes)
    if problem is not None:
        return f"down: not writable: {problem}"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), fresh_snapshot(resources) as session:
            # A real table, not `SELECT 1`: an empty, unmigrated database is not healthy either.
            await session.execute(select(ProcessedEvent.event_id).limit(1))
    except Exception as exc:
        return f"down: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    return "ok"


async def _redis(resources: Resources) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await resources.redis.ping()
    except Exception as exc:
        return f"down: {type(exc).__name__}: {exc}".rstrip(": ")
    return "ok"


@router.get(
    "/health", response_model=Health, responses={**ANY, 503: {"model": Health, "description": "Something is down."}}
)
async def health(resources: ResourcesDep, response: Response) -> Health:
    """Open to all (no token): load balancers and `komas up` poll it."""
    database, redis = await asyncio.gather(_database(resources), _redis(resources))
    ok = database == "ok" and redis == "ok"
    if not ok:
        response.status_code = 503
    return Health(status="ok" if ok else "down", database=database, redis=redis)
