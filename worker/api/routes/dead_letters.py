"""`GET /api/db/dead-letters`: what the worker could not apply, newest first (replay with `komas dlq`)."""

from __future__ import annotations

from fastapi import APIRouter

from worker.api import queries
from worker.api.auth import ReadAuth
from worker.api.deps import ReadSession
from worker.api.params import Limit, Offset
from worker.api.routes._responses import READ
from worker.api.schemas import DeadLetterOut, Page

router = APIRouter(prefix="/api/db", tags=["dead letters"], dependencies=[ReadAuth])


@router.get("/dead-letters", response_model=Page[DeadLetterOut], responses=READ)
async def list_dead_letters(
    session: ReadSession, include_replayed: bool = False, limit: Limit = 100, offset: Offset = 0
) -> Page[DeadLetterOut]:
    rows, total = await queries.page(session, queries.dead_letters_query(include_replayed), limit, offset)
    return Page[DeadLetterOut](
        items=[DeadLetterOut.model_validate(row) for row in rows], total=total, limit=limit, offset=offset
    )
