"""The trading rules, each written once; every path that applies an event uses these.

The set-based appliers (`worker.apply.bulk`), the managers of the seed's API and the parked-event
retries all decide with these functions, so the paths cannot drift apart again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from worker.store.money import to_units

#: Statuses of a signal that may still be closed.
OPEN_STATUSES = ("pending", "active")


def is_win(pnl_percent: float) -> bool:
    """A closed signal is a win when it made a profit; zero counts as a loss."""
    return pnl_percent > 0


def pnl_units(pnl_amount: float | None, position_size: float, pnl_percent: float) -> int:
    """A close's amount in units (`worker.store.money`): as given, or `position_size * pnl_percent / 100`.

    Derived amounts are computed in decimal from the numbers as written, then rounded once like
    given ones, so the same close gives the same amount on every path.
    """
    if pnl_amount is not None:
        return to_units(pnl_amount)
    return to_units(to_decimal(position_size) * to_decimal(pnl_percent) / 100)


def to_decimal(value: float) -> Decimal:
    """A float as the shortest decimal that gives it back (what the producer wrote)."""
    return Decimal(repr(float(value)))


def version(occurred_at: datetime, event_id: UUID | str | None = None) -> str:
    """The order in which overwritten state (a bot's active flag, a preset's metrics) follows time.

    `occurred_at` in UTC with microseconds, then the event id: two writes compare as text in the
    order they happened, ties broken by event id. A write that is not an event (a manager call)
    has no id and sorts before an event of the same microsecond.
    """
    at = occurred_at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    return f"{at}|{event_id or ''}"
