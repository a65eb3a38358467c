"""Applying one event on its own, inside the worker's transaction (commands, parked retries, bisection).

Every event goes to its applier in the registry (`worker.apply.registry`): a trading event through the
same set-based applier as whole batches, as a run of one, so the rules (what a win is, how an
amount is derived, which toggle is newer) are written once; a command to its handler, which calls
the managers (every manager call joins the transaction).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from events.catalogue import BaseEvent
from worker.apply.registry import APPLIERS, OneByOne
from worker.store.models import Bot, Preset, Signal

Handler = Callable[[Any], Awaitable[Any]]
#: What the set-based appliers write.
WRITTEN_BY_APPLIERS = (Bot, Signal, Preset)


async def handle(session: AsyncSession, event: BaseEvent) -> Any:
    """Apply one event in `session`'s transaction (its caller opened it and commits it); returns a
    command handler's JSON-able answer, or None for a trading event."""
    applier = APPLIERS[type(event)]
    if isinstance(applier, OneByOne):
        return await applier.apply(session, event)

    def run(sync_session: Session) -> None:
        applier.apply(sync_session.connection(), [event])

    await session.run_sync(run)
    # Set-based statements bypass the identity map: rows they may have changed are read again
    # when next used. Only those: the caller may hold other objects (a parked row) it still reads.
    for held in list(session.identity_map.values()):
        if isinstance(held, WRITTEN_BY_APPLIERS):
            session.expire(held)
    return None
