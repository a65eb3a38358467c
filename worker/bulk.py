"""Set-based appliers for the hot event types: a few statements per run of events, not per event.

`apply_all` splits a batch into runs of consecutive events of one type (order across types is
kept: a create before its close stays before it). A run of signal creates becomes one existence
check of their bots, one check of their uids, one multi-row INSERT and one UPDATE per bot; a run
of closes one SELECT, one executemany UPDATE of signals and one UPDATE of stats per bot. The
effect is the same as calling the managers event by event (the tests hold both to it); a run that
breaks a rule raises the same error the managers would, and the job's bisection finds the event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, and_, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from events import BacktestFinished, BotToggled, SignalClosed, SignalCreated
from worker.errors import DuplicateError, InvalidStateError, MissingDependencyError
from worker.fast_sql import among, insert_rows
from worker.models import Base, Bot, Preset, Signal
from worker.types import utc_now

T = TypeVar("T")
IN_CHUNK = 5000  # bound on the parameters of one IN (...) list
OPEN_STATUSES = ("pending", "active")

bots: Table = Base.metadata.tables["bots"]
signals: Table = Base.metadata.tables["signals"]
presets: Table = Base.metadata.tables["presets"]
backtest_results: Table = Base.metadata.tables["backtest_results"]


def _chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _existing(session: AsyncSession, column: Any, values: Iterable[Any]) -> set[Any]:
    wanted = list(set(values))
    dialect = (await session.connection()).dialect.name
    found: set[Any] = set()
    for chunk in _chunks(wanted):
        found.update((await session.execute(select(column).where(among(column, chunk, dialect)))).scalars())
    return found


async def _check_new_signals(session: AsyncSession, events: Sequence[SignalCreated]) -> None:
    """Raise what the managers would: a missing bot, or a uid taken (in the batch or already stored)."""
    present = await _existing(session, Bot.id, (event.bot_id for event in events))
    for event in events:
        if event.bot_id not in present:
            raise MissingDependencyError(f"bot {event.bot_id} does not exist")
    _check_uids_unique(events)
    taken = await _existing(session, Signal.uid, [event.signal_uid for event in events])
    if taken:
        raise DuplicateError(f"a signal with uid {sorted(taken)[0]!r} already exists")


def _check_uids_unique(events: Sequence[SignalCreated]) -> None:
    seen: set[str] = set()
    for event in events:
        if event.signal_uid in seen:
            raise DuplicateError(f"a signal with uid {event.signal_uid!r} already exists")
        seen.add(event.signal_uid)


async def create_signals(session: AsyncSession, events: Sequence[SignalCreated]) -> None:
    """Insert new signals; on SQLite the constraints check first and the queries only explain a refusal.

    SQLite's foreign key and unique checks are immediate and a refused statement leaves the
    transaction usable, so the happy path saves two queries (a round trip to the database thread
    each); PostgreSQL aborts the transaction on the first error, so there the checks come first.
    """
    connection = await session.connection()
    optimistic = connection.dialect.name == "sqlite"
    if optimistic:
        _check_uids_unique(events)
    else:
        await _check_new_signals(session, events)
    try:
        await _insert_signals(session, events)
    except IntegrityError:
        if optimistic:
            await _check_new_signals(session, events)  # raises the precise refusal
        raise


async def _insert_signals(session: AsyncSession, events: Sequence[SignalCreated]) -> None:
    connection = await session.connection()
    await insert_rows(
        connection,
        signals,
        [
            {
                "uid": event.signal_uid,
                "bot_id": event.bot_id,
                "symbol": event.symbol,
                "timeframe": event.timeframe,
                "direction": event.direction,
                "status": "active",
                "entry_price": event.entry_price,
                "stop_loss": event.stop_loss,
                "take_profits": [tp.model_dump() for tp in event.take_profits],
                "indicator_values": event.indicator_values,
                "exit_price": None,
                "exit_reason": None,
                "pnl_percent": None,
                "pnl_amount": None,
                "created_at": event.occurred_at,
                "closed_at": None,
            }
            for event in events
        ],
    )
    latest: dict[int, datetime] = {}
    for event in events:
        latest[event.bot_id] = max(latest.get(event.bot_id, event.occurred_at), event.occurred_at)
    await connection.execute(
        update(bots)
        .where(
            bots.c.id == bindparam("b_id"),
            or_(bots.c.last_signal_at.is_(None), bots.c.last_signal_at < bindparam("b_at")),
        )
        .values(last_signal_at=bindparam("b_at")),
        [{"b_id": bot_id, "b_at": at} for bot_id, at in latest.items()],
    )


async def close_signals(session: AsyncSession, events: Sequence[SignalClosed]) -> None:
    uids = [event.signal_uid for event in events]
    found: dict[str, tuple[int, str, int, float]] = {}
    dialect = (await session.connection()).dialect.name
    for chunk in _chunks(list(set(uids))):
        rows = await session.execute(
            select(Signal.uid, Signal.id, Signal.status, Signal.bot_id, Bot.position_size)
            .join(Bot, Bot.id == Signal.bot_id)
            .where(among(Signal.uid, chunk, dialect))
        )
        for uid, signal_id, status, bot_id, position_size in rows:
            found[uid] = (signal_id, status, bot_id, position_size)
    closing: set[str] = set()
    updates: list[dict[str, Any]] = []
    stats: dict[int, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])  # signals, wins, losses, profit
    for event in events:
        if event.signal_uid not in found:
            raise MissingDependencyError(f"signal {event.signal_uid!r} does not exist (yet)")
        signal_id, status, bot_id, position_size = found[event.signal_uid]
        if status not in OPEN_STATUSES or event.signal_uid in closing:
            raise InvalidStateError(
                f"signal {signal_id} is already {'closed' if event.signal_uid in closing else status}"
            )
        closing.add(event.signal_uid)
        amount = event.pnl_amount if event.pnl_amount is not None else position_size * event.pnl_percent / 100.0
        updates.append(
            {
                "s_id": signal_id,
                "s_exit_price": event.exit_price,
                "s_exit_reason": event.exit_reason,
                "s_pnl_percent": event.pnl_percent,
                "s_pnl_amount": amount,
                "s_closed_at": event.occurred_at,
            }
        )
        win = event.pnl_percent > 0
        totals = stats[bot_id]
        totals[0] += 1
        totals[1] += int(win)
        totals[2] += int(not win)
        totals[3] += amount
    connection = await session.connection()
    await connection.execute(
        update(signals)
        .where(and_(signals.c.id == bindparam("s_id"), or_(*(signals.c.status == status for status in OPEN_STATUSES))))
        .values(
            status="closed",
            exit_price=bindparam("s_exit_price"),
            exit_reason=bindparam("s_exit_reason"),
            pnl_percent=bindparam("s_pnl_percent"),
            pnl_amount=bindparam("s_pnl_amount"),
            closed_at=bindparam("s_closed_at"),
        ),
        updates,
    )
    now = utc_now()
    await connection.execute(
        update(bots)
        .where(bots.c.id == bindparam("b_id"))
        .values(
            total_signals=bots.c.total_signals + bindparam("b_n"),
            total_wins=bots.c.total_wins + bindparam("b_wins"),
            total_losses=bots.c.total_losses + bindparam("b_losses"),
            total_profit=bots.c.total_profit + bindparam("b_profit"),
            updated_at=bindparam("b_now"),
        ),
        [
            {"b_id": bot_id, "b_n": n, "b_wins": wins, "b_losses": losses, "b_profit": profit, "b_now": now}
            for bot_id, (n, wins, losses, profit) in stats.items()
        ],
    )


async def record_backtests(session: AsyncSession, events: Sequence[BacktestFinished]) -> None:
    present = await _existing(session, Preset.id, (event.preset_id for event in events))
    for event in events:
        if event.preset_id not in present:
            raise MissingDependencyError(f"preset {event.preset_id} does not exist")
    connection = await session.connection()
    await insert_rows(
        connection,
        backtest_results,
        [
            {
                "preset_id": event.preset_id,
                "event_id": str(event.event_id),
                "symbol": event.symbol,
                "timeframe": event.timeframe,
                "win_rate": event.win_rate,
                "profit_factor": event.profit_factor,
                "total_profit_percent": event.total_profit_percent,
                "max_drawdown_percent": event.max_drawdown_percent,
                "sharpe_ratio": event.sharpe_ratio,
                "total_trades": event.total_trades,
                "params": event.params,
                "created_at": event.occurred_at,
            }
            for event in events
        ],
    )
    latest = {event.preset_id: event for event in events}  # the last one of each preset wins, as in sequence
    now = utc_now()
    await connection.execute(
        update(presets)
        .where(presets.c.id == bindparam("p_id"))
        .values(
            win_rate=bindparam("p_win_rate"),
            profit_factor=bindparam("p_profit_factor"),
            total_profit_percent=bindparam("p_total_profit_percent"),
            max_drawdown_percent=bindparam("p_max_drawdown_percent"),
            sharpe_ratio=bindparam("p_sharpe_ratio"),
            last_used_at=bindparam("p_now"),
            updated_at=bindparam("p_now"),
        ),
        [
            {
                "p_id": preset_id,
                "p_win_rate": event.win_rate,
                "p_profit_factor": event.profit_factor,
                "p_total_profit_percent": event.total_profit_percent,
                "p_max_drawdown_percent": event.max_drawdown_percent,
                "p_sharpe_ratio": event.sharpe_ratio,
                "p_now": now,
            }
            for preset_id, event in latest.items()
        ],
    )


async def toggle_bots(session: AsyncSession, events: Sequence[BotToggled]) -> None:
    present = await _existing(session, Bot.id, (event.bot_id for event in events))
    for event in events:
        if event.bot_id not in present:
            raise MissingDependencyError(f"bot {event.bot_id} does not exist")
    final = {event.bot_id: event.active for event in events}
    connection = await session.connection()
    now = utc_now()
    await connection.execute(
        update(bots).where(bots.c.id == bindparam("b_id")).values(is_active=bindparam("b_active"), updated_at=now),
        [{"b_id": bot_id, "b_active": active} for bot_id, active in final.items()],
    )


BULK_APPLIERS: dict[str, Callable[[AsyncSession, Sequence[Any]], Awaitable[None]]] = {
    "signal.created": create_signals,
    "signal.closed": close_signals,
    "backtest.finished": record_backtests,
    "bot.toggled": toggle_bots,
}
