"""Set-based appliers for the hot event types: a few statements per run of events, not per event.

`apply_all` splits a batch into runs of consecutive events of one type (order across types is
kept: a create before its close stays before it). A run of signal creates becomes one existence
check of their bots, one check of their uids, one multi-row INSERT and one UPDATE per bot; a run
of closes one SELECT, one executemany UPDATE of signals and one UPDATE of stats per bot. The
effect is the same as calling the managers event by event (the tests hold both to it); a run that
breaks a rule raises the same error the managers would, and the job's bisection finds the event.

The inbox, `processed_events` (what makes a second delivery a no-op), is written here only:
`record_processed`, by every path that applies or refuses an event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Table, and_, bindparam, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from events import BacktestFinished, BotToggled, SignalClosed, SignalCreated
from events.catalogue import BaseEvent
from worker.store.errors import DuplicateError, InvalidStateError, MissingDependencyError
from worker.store.fast_sql import AMONG, among, among_values, insert_rows, prebuilt, scalars_among
from worker.store.models import Base, Bot, ParkedEvent, Preset, ProcessedEvent, Signal
from worker.store.rules import OPEN_STATUSES, is_win, pnl_units, version
from worker.store.types import utc_now

T = TypeVar("T")
IN_CHUNK = 5000  # bound on the parameters of one IN (...) list

bots: Table = Base.metadata.tables["bots"]
signals: Table = Base.metadata.tables["signals"]
presets: Table = Base.metadata.tables["presets"]
backtest_results: Table = Base.metadata.tables["backtest_results"]
processed_events: Table = Base.metadata.tables["processed_events"]

#: Trading events between two commands are applied grouped by type in this order. Creates go
#: before closes (a signal's create stays before its close, and a close that arrived first finds
#: its create instead of being parked); backtests and toggles touch nothing signals touch; within
#: a type the arrival order is kept. Commands stay where they are: they may create what follows.
TRADING_ORDER = {"signal.created": 0, "signal.closed": 1, "backtest.finished": 2, "bot.toggled": 3}

# Statements built once: a commit round of one event used to spend more on building and keying
# fresh statement objects than SQLite spent executing them.
_TOUCH_LAST_SIGNAL = (
    update(bots)
    .where(
        bots.c.id == bindparam("b_id"),
        or_(bots.c.last_signal_at.is_(None), bots.c.last_signal_at < bindparam("b_at")),
    )
    .values(last_signal_at=bindparam("b_at"))
)
_CLOSE_SIGNAL = (
    update(signals)
    .where(and_(signals.c.id == bindparam("s_id"), or_(*(signals.c.status == status for status in OPEN_STATUSES))))
    .values(
        status="closed",
        exit_price=bindparam("s_exit_price"),
        exit_reason=bindparam("s_exit_reason"),
        pnl_percent=bindparam("s_pnl_percent"),
        pnl_amount=bindparam("s_pnl_amount", type_=BigInteger),  # units (worker.store.money), not converted again
        closed_at=bindparam("s_closed_at"),
    )
)
_ADD_STATS = (
    update(bots)
    .where(bots.c.id == bindparam("b_id"))
    .values(
        total_signals=bots.c.total_signals + bindparam("b_n"),
        total_wins=bots.c.total_wins + bindparam("b_wins"),
        total_losses=bots.c.total_losses + bindparam("b_losses"),
        total_profit=bots.c.total_profit + bindparam("b_profit", type_=BigInteger),  # units: integers add exactly
        updated_at=bindparam("b_now"),
    )
)
_PRESET_METRICS = (
    update(presets)
    .where(
        presets.c.id == bindparam("p_id"),
        or_(presets.c.metrics_version.is_(None), presets.c.metrics_version < bindparam("p_version")),
    )
    .values(
        metrics_version=bindparam("p_version"),
        win_rate=bindparam("p_win_rate"),
        profit_factor=bindparam("p_profit_factor"),
        total_profit_percent=bindparam("p_total_profit_percent"),
        max_drawdown_percent=bindparam("p_max_drawdown_percent"),
        sharpe_ratio=bindparam("p_sharpe_ratio"),
        last_used_at=bindparam("p_now"),
        updated_at=bindparam("p_now"),
    )
)
_TOGGLE = (
    update(bots)
    .where(
        bots.c.id == bindparam("b_id"),
        or_(bots.c.active_version.is_(None), bots.c.active_version < bindparam("b_version")),
    )
    .values(is_active=bindparam("b_active"), active_version=bindparam("b_version"), updated_at=bindparam("b_now"))
)


def _chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _found_among(connection: Connection, key: Any, build: Callable[[], Any], values: Sequence[Any]) -> set[Any]:
    """What a prebuilt `AMONG` query returns for `values`: one query per chunk, the list as one parameter."""
    found: set[Any] = set()
    for chunk in _chunks(values):
        found.update(scalars_among(connection, key, build, chunk))
    return found


def existing(connection: Connection, column: Any, values: Iterable[Any]) -> set[Any]:
    """The given values that `column` holds."""
    dialect = connection.dialect.name

    def build() -> Any:
        return select(column).where(among(column, dialect))

    return _found_among(connection, (str(column), dialect), build, list(set(values)))


def _check_new_signals(connection: Connection, events: Sequence[SignalCreated]) -> None:
    """Raise what the managers would: a missing bot, or a uid taken (in the batch or already stored)."""
    present = existing(connection, Bot.id, (event.bot_id for event in events))
    for event in events:
        if event.bot_id not in present:
            raise MissingDependencyError(f"bot {event.bot_id} does not exist")
    _check_uids_unique(events)
    taken = existing(connection, Signal.uid, [event.signal_uid for event in events])
    if taken:
        raise DuplicateError(f"a signal with uid {sorted(taken)[0]!r} already exists")


def _check_uids_unique(events: Sequence[SignalCreated]) -> None:
    seen: set[str] = set()
    for event in events:
        if event.signal_uid in seen:
            raise DuplicateError(f"a signal with uid {event.signal_uid!r} already exists")
        seen.add(event.signal_uid)


def create_signals(connection: Connection, events: Sequence[SignalCreated]) -> None:
    """Insert new signals; on SQLite the constraints check first and the queries only explain a refusal.

    SQLite's foreign key and unique checks are immediate and a refused statement leaves the
    transaction usable, so the happy path saves two queries (a round trip to the database thread
    each); PostgreSQL aborts the transaction on the first error, so there the checks come first.
    """
    optimistic = connection.dialect.name == "sqlite"
    if optimistic:
        _check_uids_unique(events)
    else:
        _check_new_signals(connection, events)
    try:
        _insert_signals(connection, events)
    except IntegrityError:
        if optimistic:
            _check_new_signals(connection, events)  # raises the precise refusal
        raise


def _insert_signals(connection: Connection, events: Sequence[SignalCreated]) -> None:
    insert_rows(
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
                "take_profits": [tp.__dict__ for tp in event.take_profits],  # its fields, as model_dump() gives
                "indicator_values": event.indicator_values,
                "created_at": event.occurred_at,
            }  # exit_*, pnl_* and closed_at stay NULL until the close
            for event in events
        ],
    )
    latest: dict[int, datetime] = {}
    for event in events:
        latest[event.bot_id] = max(latest.get(event.bot_id, event.occurred_at), event.occurred_at)
    connection.execute(_TOUCH_LAST_SIGNAL, [{"b_id": bot_id, "b_at": at} for bot_id, at in latest.items()])


def close_signals(connection: Connection, events: Sequence[SignalClosed]) -> None:
    uids = [event.signal_uid for event in events]
    found: dict[str, tuple[int, str, int, float]] = {}  # uid: id, status, bot, position size
    dialect = connection.dialect.name
    query = prebuilt(
        ("open signals", dialect),
        lambda: (
            select(Signal.uid, Signal.id, Signal.status, Signal.bot_id, Bot.position_size)
            .join(Bot, Bot.id == Signal.bot_id)
            .where(among(Signal.uid, dialect))
        ),
    )
    for chunk in _chunks(list(set(uids))):
        rows = connection.execute(query, {AMONG: among_values(chunk, dialect)})
        for uid, signal_id, status, bot_id, position_size in rows:
            found[uid] = (signal_id, status, bot_id, position_size)
    closing: set[str] = set()
    updates: list[dict[str, Any]] = []
    stats: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # signals, wins, losses, profit (units)
    for event in events:
        if event.signal_uid not in found:
            raise MissingDependencyError(f"signal {event.signal_uid!r} does not exist (yet)")
        signal_id, status, bot_id, position_size = found[event.signal_uid]
        if status not in OPEN_STATUSES or event.signal_uid in closing:
            raise InvalidStateError(
                f"signal {signal_id} is already {'closed' if event.signal_uid in closing else status}"
            )
        closing.add(event.signal_uid)
        amount = pnl_units(event.pnl_amount, position_size, event.pnl_percent)
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
        win = is_win(event.pnl_percent)
        totals = stats[bot_id]
        totals[0] += 1
        totals[1] += int(win)
        totals[2] += int(not win)
        totals[3] += amount
    connection.execute(_CLOSE_SIGNAL, updates)
    now = utc_now()
    connection.execute(
        _ADD_STATS,
        [
            {"b_id": bot_id, "b_n": n, "b_wins": wins, "b_losses": losses, "b_profit": profit, "b_now": now}
            for bot_id, (n, wins, losses, profit) in stats.items()
        ],
    )


def record_backtests(connection: Connection, events: Sequence[BacktestFinished]) -> None:
    present = existing(connection, Preset.id, (event.preset_id for event in events))
    for event in events:
        if event.preset_id not in present:
            raise MissingDependencyError(f"preset {event.preset_id} does not exist")
    insert_rows(
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
    latest: dict[int, tuple[str, BacktestFinished]] = {}  # the newest of each preset (state follows time)
    for event in events:
        at = version(event.occurred_at, event.event_id)
        if event.preset_id not in latest or at > latest[event.preset_id][0]:
            latest[event.preset_id] = (at, event)
    now = utc_now()
    connection.execute(
        _PRESET_METRICS,
        [
            {
                "p_id": preset_id,
                "p_version": at,
                "p_win_rate": event.win_rate,
                "p_profit_factor": event.profit_factor,
                "p_total_profit_percent": event.total_profit_percent,
                "p_max_drawdown_percent": event.max_drawdown_percent,
                "p_sharpe_ratio": event.sharpe_ratio,
                "p_now": now,
            }
            for preset_id, (at, event) in latest.items()
        ],
    )


def toggle_bots(connection: Connection, events: Sequence[BotToggled]) -> None:
    present = existing(connection, Bot.id, (event.bot_id for event in events))
    for event in events:
        if event.bot_id not in present:
            raise MissingDependencyError(f"bot {event.bot_id} does not exist")
    latest: dict[int, tuple[str, bool]] = {}  # the newest toggle of each bot (state follows time)
    for event in events:
        at = version(event.occurred_at, event.event_id)
        if event.bot_id not in latest or at > latest[event.bot_id][0]:
            latest[event.bot_id] = (at, event.active)
    now = utc_now()
    connection.execute(
        _TOGGLE,
        [
            {"b_id": bot_id, "b_active": active, "b_version": at, "b_now": now}
            for bot_id, (at, active) in latest.items()
        ],
    )


# --- a batch's bookkeeping, shared by the async path and the SQLite writer thread ------------------


def _by_type(stretch: list[BaseEvent]) -> Iterator[list[BaseEvent]]:
    ordered = sorted(stretch, key=lambda event: TRADING_ORDER[event.type])  # stable
    for _event_type, run in groupby(ordered, key=lambda event: event.type):
        yield list(run)


def runs(events: list[BaseEvent]) -> Iterator[list[BaseEvent]]:
    """Runs of one type to apply in turn: few, long runs for the set-based appliers; commands alone.

    Live bots interleave creates and closes; taken as they came, a batch would be hundreds of
    one-event runs, each paying for its own queries.
    """
    stretch: list[BaseEvent] = []
    for event in events:
        if event.type in TRADING_ORDER:
            stretch.append(event)
            continue
        yield from _by_type(stretch)
        stretch = []
        yield [event]
    yield from _by_type(stretch)


def known_ids(connection: Connection, ids: list[str], *, parked_too: bool) -> set[str]:
    """Ids already applied (or parked, unless the caller knows none are)."""
    dialect = connection.dialect.name
    return _found_among(connection, ("known ids", dialect, parked_too), lambda: _known_query(dialect, parked_too), ids)


def _known_query(dialect: str, parked_too: bool) -> Any:
    query: Any = select(ProcessedEvent.event_id).where(among(ProcessedEvent.event_id, dialect))
    if parked_too:
        query = query.union_all(select(ParkedEvent.event_id).where(among(ParkedEvent.event_id, dialect)))
    return query


@dataclass
class Fresh:
    """What `split_fresh` found: per event whether it is new, and the new events with their ids as text."""

    flags: list[bool]
    events: list[BaseEvent]
    ids: list[str]


def split_fresh(connection: Connection, events: Sequence[BaseEvent], *, parked_too: bool) -> Fresh:
    """Tell new events from those applied or parked before, or earlier in the batch."""
    ids = [str(event.event_id) for event in events]
    done = known_ids(connection, list(set(ids)), parked_too=parked_too)
    fresh = Fresh([], [], [])
    for event, event_id in zip(events, ids, strict=True):
        is_new = event_id not in done
        fresh.flags.append(is_new)
        if is_new:
            done.add(event_id)
            fresh.events.append(event)
            fresh.ids.append(event_id)
    return fresh


def record_processed(connection: Connection, events: Sequence[BaseEvent], ids: Sequence[str]) -> None:
    """The inbox rows that make a second delivery of these events (ids as text, in order) a no-op."""
    now = utc_now()
    insert_rows(
        connection,
        processed_events,
        [
            {"event_id": event_id, "event_type": event.type, "applied_at": now}
            for event, event_id in zip(events, ids, strict=True)
        ],
    )
