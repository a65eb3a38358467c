"""Signals: `GET /api/db/signals` (filtered, paginated, with the total) and `GET /api/db/signals/{id}`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from worker.api import queries
from worker.api.auth import ReadAuth
from worker.api.deps import ReadSession
from worker.api.errors import ApiError, get_or_404
from worker.api.params import MAX_ID, Limit, Offset, ResourceId, SignalStatus, Since, Until
from worker.api.routes._responses import FOUND, READ
from worker.api.schemas import Page, SignalOut
from worker.store.managers.signals import signals_query
from worker.store.models import Signal

router = APIRouter(prefix="/api/db/signals", tags=["signals"], dependencies=[ReadAuth])


@router.get("", response_model=Page[SignalOut], responses={**READ, 422: {"description": "Bad filter."}})
async def list_signals(
    session: ReadSession,
    bot_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    symbol: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
    status: SignalStatus | None = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[SignalOut]:
    """Newest first. `from` is inclusive, `to` exclusive, both on `created_at`."""
    if since is not None and until is not None and since > until:
        raise ApiError(422, "`from` must not be after `to`")
    query = signals_query(bot_id, symbol, status, since, until)
    rows, total = await queries.page(session, query, limit, offset)
    return Page[SignalOut](
        items=[SignalOut.model_validate(row) for row in rows], total=total, limit=limit, offset=offset
    )


@router.get("/{signal_id}", response_model=SignalOut, responses=FOUND)
async def get_signal(signal_id: ResourceId, session: ReadSession) -> SignalOut:
    signal = await get_or_404(session, Signal, signal_id, f"signal {signal_id}")
    return SignalOut.model_validate(signal)
