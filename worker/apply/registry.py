"""The rule set: which applier applies each event class, registered once, used by every path.

A trading event has a *set-based* applier (a few statements for a whole run of events of its
class); the writer thread, the async session (PostgreSQL, batches with commands), bisection and
parked retries all call it, with a run of thousands or of one. A command has a *one-by-one*
applier that calls the managers and answers the caller. The worker refuses to start when an
event class of the catalogue has no applier (`check_complete`).

Adding an event type: its model in `events/` (and the catalogue's union), its applier here (a
set-based one in `worker.apply.bulk`, or a command handler in `worker.apply.command_handlers`), and a
migration when it stores something new.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from events import BacktestFinished, BotToggled, SignalClosed, SignalCreated
from events.catalogue import EVENT_TYPES, BaseEvent
from events.commands import (
    CreateBot,
    CreatePreset,
    DeleteBot,
    DeleteCache,
    DeletePreset,
    DeleteSetting,
    SetPresetFavorite,
    SetSetting,
    UpdateBot,
    UpdatePreset,
    UpdatePresetPerformance,
    UpsertCache,
)
from worker.apply import bulk, command_handlers
from worker.store.db import joined


@dataclass(frozen=True)
class SetBased:
    """Applies a run of events of one class with set-based statements, on the transaction's connection."""

    apply: Callable[[Connection, Sequence[Any]], None]


@dataclass(frozen=True)
class OneByOne:
    """Applies one command through the managers, in the transaction of the session it is given; returns
    its JSON answer."""

    handler: Callable[[Any], Awaitable[Any]]

    async def apply(self, session: AsyncSession, event: Any) -> Any:
        async with joined(session):
            return await self.handler(event)


APPLIERS: dict[type[BaseEvent], SetBased | OneByOne] = {
    SignalCreated: SetBased(bulk.create_signals),
    SignalClosed: SetBased(bulk.close_signals),
    BacktestFinished: SetBased(bulk.record_backtests),
    BotToggled: SetBased(bulk.toggle_bots),
    SetSetting: OneByOne(command_handlers.on_set_setting),
    DeleteSetting: OneByOne(command_handlers.on_delete_setting),
    CreatePreset: OneByOne(command_handlers.on_create_preset),
    UpdatePreset: OneByOne(command_handlers.on_update_preset),
    UpdatePresetPerformance: OneByOne(command_handlers.on_preset_performance),
    SetPresetFavorite: OneByOne(command_handlers.on_preset_favorite),
    DeletePreset: OneByOne(command_handlers.on_delete_preset),
    CreateBot: OneByOne(command_handlers.on_create_bot),
    UpdateBot: OneByOne(command_handlers.on_update_bot),
    DeleteBot: OneByOne(command_handlers.on_delete_bot),
    UpsertCache: OneByOne(command_handlers.on_upsert_cache),
    DeleteCache: OneByOne(command_handlers.on_delete_cache),
}


class IncompleteRuleSet(RuntimeError):
    """An event class of the catalogue has no applier: the worker would dead-letter every such event."""


def check_complete(appliers: dict[type[BaseEvent], SetBased | OneByOne] = APPLIERS) -> None:
    """Refuse to run with a catalogue class that has no applier (called at the worker's start)."""
    missing = [event_class.__name__ for event_class in EVENT_TYPES if event_class not in appliers]
    if missing:
        raise IncompleteRuleSet(f"no applier registered for {', '.join(missing)} (see worker/apply/registry.py)")


def set_based(event_class: type[BaseEvent]) -> Callable[[Connection, Sequence[Any]], None] | None:
    """The set-based applier of a class, or None when its events are applied one by one."""
    applier = APPLIERS.get(event_class)
    return applier.apply if isinstance(applier, SetBased) else None


def is_set_based(event: BaseEvent) -> bool:
    return isinstance(APPLIERS.get(type(event)), SetBased)


def apply_trading(connection: Connection, events: Sequence[BaseEvent], *, parked_too: bool) -> list[bool]:
    """A batch of set-based events only, in the caller's transaction: new ones applied and recorded."""
    fresh = bulk.split_fresh(connection, events, parked_too=parked_too)
    for run in bulk.runs(fresh.events):
        apply = set_based(type(run[0]))
        assert apply is not None, "runs() only groups set-based events"
        apply(connection, run)
    bulk.record_processed(connection, fresh.events, fresh.ids)
    return fresh.flags
