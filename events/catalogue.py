"""The catalogue: every event type, one discriminated union over `type`, and `parse_event`.

Validation is the same for the publisher and the worker, whatever language produced the payload.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from events.commands import (
    COMMAND_TYPES,
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
from events.envelope import SCHEMA_VERSION, BaseEvent, JsonObject, utc_now
from events.errors import EventValidationError
from events.trading import BacktestFinished, BotToggled, SignalClosed, SignalCreated, TakeProfit

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "BacktestFinished",
    "BaseEvent",
    "BotToggled",
    "Event",
    "JsonObject",
    "SignalClosed",
    "SignalCreated",
    "TakeProfit",
    "parse_event",
    "utc_now",
]

TRADING_TYPES: tuple[type[BaseEvent], ...] = (SignalCreated, SignalClosed, BacktestFinished, BotToggled)
EVENT_TYPES: tuple[type[BaseEvent], ...] = TRADING_TYPES + COMMAND_TYPES


Event = Annotated[
    SignalCreated
    | SignalClosed
    | BacktestFinished
    | BotToggled
    | SetSetting
    | DeleteSetting
    | CreatePreset
    | UpdatePreset
    | UpdatePresetPerformance
    | SetPresetFavorite
    | DeletePreset
    | CreateBot
    | UpdateBot
    | DeleteBot
    | UpsertCache
    | DeleteCache,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
_LIST_ADAPTER: TypeAdapter[list[Event]] = TypeAdapter(list[Event])


def parse_event(payload: Mapping[str, Any] | BaseEvent) -> Event:
    """Validate a raw payload into its event model; `EventValidationError` names every bad field."""
    if isinstance(payload, EVENT_TYPES):
        return payload  # type: ignore[return-value]  # already validated at construction
    if not isinstance(payload, Mapping):
        raise EventValidationError(f"event: expected a JSON object, got {type(payload).__name__}")
    try:  # NaN anywhere is refused by the envelope's own validator
        return _ADAPTER.validate_python(payload)
    except ValidationError as exc:
        raise EventValidationError.from_pydantic(exc) from None


def parse_events(payloads: Sequence[Any]) -> list[Event | EventValidationError]:
    """Validate many payloads; each comes back as its event or as the error that refused it.

    A batch that is all valid (the usual case) is validated in one call, much cheaper than one call
    per event; only when something in it is wrong is each payload validated on its own.
    """
    if all(type(payload) is dict for payload in payloads) or all(isinstance(p, Mapping) for p in payloads):
        try:
            return list(_LIST_ADAPTER.validate_python(payloads))
        except ValidationError:
            pass
    parsed: list[Event | EventValidationError] = []
    for payload in payloads:
        try:
            parsed.append(parse_event(payload))
        except EventValidationError as exc:
            parsed.append(exc)
    return parsed
