"""Trading signals and the bot stats their closes drive."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, update

from worker.store.db import read_session, transaction
from worker.store.errors import DuplicateError, InvalidStateError, MissingDependencyError, NotFoundError
from worker.store.managers.bots import BotManager
from worker.store.models import SIGNAL_STATUSES, Bot, Signal
from worker.store.money import as_decimal
from worker.store.rules import OPEN_STATUSES, is_win, pnl_units
from worker.store.types import units, utc_now


def signals_query(
    bot_id: int | None = None,
    symbol: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[Signal]:
    """Signals newest first, filtered; `since` inclusive, `until` exclusive, both on `created_at`.

    Shared with the REST API, which runs it on its own read-only engine.
    """
    query = select(Signal).order_by(Signal.created_at.desc(), Signal.id.desc())
    if bot_id is not None:
        query = query.where(Signal.bot_id == bot_id)
    if symbol is not None:
        query = query.where(Signal.symbol == symbol)
    if status is not None:
        query = query.where(Signal.status == status)
    if since is not None:
        query = query.where(Signal.created_at >= since)
    if until is not None:
        query = query.where(Signal.created_at < until)
    return query


class SignalManager:
    """Create, find, close and list signals."""

    @staticmethod
    async def create(
        bot_id: int,
        symbol: str,
        timeframe: str,
        direction: str,
        entry_price: float,
        stop_loss: float | None = None,
        take_profits: list[dict[str, Any]] | None = None,
        indicator_values: dict[str, Any] | None = None,
        uid: str | None = None,
        status: str = "active",
        created_at: datetime | None = None,
    ) -> Signal:
        """A new signal of an existing bot; `uid` is the producer's id (made up when not given)."""
        if direction not in ("long", "short"):
            raise ValueError(f"direction must be 'long' or 'short', not {direction!r}")
        if status not in OPEN_STATUSES:
            raise ValueError(f"a new signal is pending or active, not {status!r}")
        if not entry_price > 0:
            raise ValueError("entry_price must be > 0")
        created = created_at or utc_now()
        async with transaction() as session:
            if await session.get(Bot, bot_id) is None:
                raise MissingDependencyError(f"bot {bot_id} does not exist")
            signal_uid = uid or uuid.uuid4().hex
            if await session.scalar(select(Signal.id).where(Signal.uid == signal_uid)) is not None:
                raise DuplicateError(f"a signal with uid {signal_uid!r} already exists")
            signal = Signal(
                uid=signal_uid,
                bot_id=bot_id,
                symbol=symbol,
                timeframe=timeframe,
                direction=direction,
                status=status,
                entry_price=entry_price,
                stop_loss=stop_loss,
                take_profits=[dict(tp) for tp in take_profits or []],
                indicator_values=indicator_values or {},
                created_at=created,
            )
            session.add(signal)
            await session.flush()
            await BotManager.touch_last_signal(bot_id, created)
            return signal

    @staticmethod
    async def get(signal_id: int) -> Signal | None:
        async with read_session() as session:
            return await session.get(Signal, signal_id)

    @staticmethod
    async def get_by_uid(uid: str) -> Signal | None:
        async with read_session() as session:
            return await session.scalar(select(Signal).where(Signal.uid == uid))

    @staticmethod
    async def close(
        signal_id: int,
        exit_price: float,
        exit_reason: str,
        pnl_percent: float,
        pnl_amount: float | None = None,
        closed_at: datetime | None = None,
    ) -> Signal:
        """Close an open signal and count it in its bot's stats, in one transaction.

        Without `pnl_amount` the amount is `position_size * pnl_percent / 100` of the bot.
        Closing a signal that is already closed (or cancelled) raises `InvalidStateError`.
        """
        async with transaction() as session:
            row = (
                await session.execute(
                    select(Signal.status, Signal.bot_id, Bot.position_size)
                    .join(Bot, Bot.id == Signal.bot_id)
                    .where(Signal.id == signal_id)
                )
            ).first()
            if row is None:
                raise NotFoundError(f"signal {signal_id} does not exist")
            status, bot_id, position_size = row
            if status not in OPEN_STATUSES:
                raise InvalidStateError(f"signal {signal_id} is already {status}")
            amount = pnl_units(pnl_amount, position_size, pnl_percent)
            result = await session.execute(
                update(Signal)
                .where(Signal.id == signal_id, Signal.status.in_(OPEN_STATUSES))
                .values(
                    status="closed",
                    exit_price=exit_price,
                    exit_reason=exit_reason,
                    pnl_percent=pnl_percent,
                    pnl_amount=units(amount),
                    closed_at=closed_at or utc_now(),
                )
                .execution_options(synchronize_session="fetch")
            )
            if not result.rowcount:  # type: ignore[attr-defined]  # pragma: no cover - single writer
                raise InvalidStateError(f"signal {signal_id} was closed concurrently")
            await BotManager.increment_stats(bot_id, is_win=is_win(pnl_percent), pnl=as_decimal(amount))
            signal = await session.get(Signal, signal_id, populate_existing=True)
            assert signal is not None
            return signal

    @staticmethod
    async def close_by_uid(uid: str, **kwargs: Any) -> Signal:
        """`close()` addressed by the producer's uid; a uid not seen yet is a missing dependency."""
        async with transaction() as session:
            signal_id = await session.scalar(select(Signal.id).where(Signal.uid == uid))
            if signal_id is None:
                raise MissingDependencyError(f"signal {uid!r} does not exist (yet)")
            return await SignalManager.close(signal_id, **kwargs)

    @staticmethod
    async def get_active_by_bot(bot_id: int) -> list[Signal]:
        """Open signals of a bot, oldest first."""
        query = (
            select(Signal)
            .where(Signal.bot_id == bot_id, Signal.status == "active")
            .order_by(Signal.created_at, Signal.id)
        )
        async with read_session() as session:
            return list((await session.scalars(query)).all())

    @staticmethod
    async def list_recent(
        limit: int = 50,
        bot_id: int | None = None,
        symbol: str | None = None,
        status: str | None = None,
    ) -> list[Signal]:
        """Newest first, optionally filtered."""
        if status is not None and status not in SIGNAL_STATUSES:
            raise ValueError(f"status must be one of {SIGNAL_STATUSES}, not {status!r}")
        query = signals_query(bot_id, symbol, status).limit(limit)
        async with read_session() as session:
            return list((await session.scalars(query)).all())
