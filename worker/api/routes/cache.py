"""Data cache metadata: `GET /api/db/cache`, `GET/DELETE /api/db/cache/{symbol}/{timeframe}`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from events.commands import DeleteCache
from worker.api import queries
from worker.api.auth import ReadAuth, WriteAuth
from worker.api.deps import CommandsDep, ReadSession
from worker.api.errors import not_found
from worker.api.idempotency import IdempotentRoute
from worker.api.params import SOURCE, SOURCE_PATTERN, SourceQuery, SymbolPath, TimeframePath
from worker.api.routes._responses import FOUND, READ, WRITE_FOUND
from worker.api.schemas import CacheOut

router = APIRouter(prefix="/api/db/cache", tags=["cache"], route_class=IdempotentRoute)


@router.get("", response_model=list[CacheOut], dependencies=[ReadAuth], responses=READ)
async def list_cache(
    session: ReadSession,
    source: Annotated[str | None, Query(min_length=1, max_length=50, pattern=SOURCE_PATTERN)] = None,
) -> list[CacheOut]:
    return [CacheOut.model_validate(row) for row in await queries.cache_entries(session, source)]


@router.get("/{symbol}/{timeframe}", response_model=CacheOut, dependencies=[ReadAuth], responses=FOUND)
async def get_cache(
    symbol: SymbolPath, timeframe: TimeframePath, session: ReadSession, source: SourceQuery = "binance"
) -> CacheOut:
    entry = await queries.cache_entry(session, symbol, timeframe, source)
    if entry is None:
        raise not_found(f"cache entry {symbol}/{timeframe}/{source}")
    return CacheOut.model_validate(entry)


@router.delete("/{symbol}/{timeframe}", status_code=204, dependencies=[WriteAuth], responses=WRITE_FOUND)
async def delete_cache(
    symbol: SymbolPath, timeframe: TimeframePath, commands: CommandsDep, source: SourceQuery = "binance"
) -> Response:
    await commands.execute(DeleteCache(symbol=symbol, timeframe=timeframe, data_source=source, source=SOURCE))
    return Response(status_code=204)
