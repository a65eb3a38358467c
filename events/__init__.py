"""The event contract of Komas: what producers import to talk to the persistence core.

Importable without SQLAlchemy: bots, the optimizer and other services depend on this package only.
"""

from events.batcher import LingeringPublisher
from events.catalogue import (
    BacktestFinished,
    BaseEvent,
    BotToggled,
    Event,
    SignalClosed,
    SignalCreated,
    TakeProfit,
    parse_event,
)
from events.errors import EventValidationError, PublishError
from events.publisher import Publisher, SyncPublisher
from events.wire import DEFAULT_QUEUE, JOB_FUNCTION

__all__ = [
    "DEFAULT_QUEUE",
    "JOB_FUNCTION",
    "BacktestFinished",
    "BaseEvent",
    "BotToggled",
    "Event",
    "EventValidationError",
    "LingeringPublisher",
    "PublishError",
    "Publisher",
    "SignalClosed",
    "SignalCreated",
    "SyncPublisher",
    "TakeProfit",
    "parse_event",
]
