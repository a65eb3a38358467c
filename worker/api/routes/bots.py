"""Bots (read only here; bots are written with `bot.*` events): `GET /api/db/bots`, `GET /api/db/bots/{id}`."""

from __future__ import annotations

from fastapi import APIRouter

from worker.api import queries
from worker.api.auth import ReadAuth
from worker.api.deps import ReadSession
from worker.api.errors import get_or_404
from worker.api.params import ResourceId
from worker.api.routes._responses import FOUND, READ
from worker.api.schemas import BotDetail, BotOut, BotStats
from worker.store.models import Bot

router = APIRouter(prefix="/api/db/bots", tags=["bots"], dependencies=[ReadAuth])


@router.get("", response_model=list[BotOut], responses=READ)
async def list_bots(session: ReadSession, active_only: bool = False) -> list[BotOut]:
    return [BotOut.model_validate(row) for row in await queries.bots(session, active_only)]


@router.get("/{bot_id}", response_model=BotDetail, responses=FOUND)
async def get_bot(bot_id: ResourceId, session: ReadSession) -> BotDetail:
    """The bot with its stats: counters (kept equal to its closed signals), win rate, open signals."""
    bot = await get_or_404(session, Bot, bot_id, f"bot {bot_id}")
    closed = bot.total_wins + bot.total_losses
    stats = BotStats(
        total_signals=bot.total_signals,
        total_wins=bot.total_wins,
        total_losses=bot.total_losses,
        total_profit=bot.total_profit,
        win_rate=round(100.0 * bot.total_wins / closed, 4) if closed else None,
        open_signals=await queries.open_signals(session, bot_id),
    )
    return BotDetail.model_validate({**BotOut.model_validate(bot).model_dump(), "stats": stats})
