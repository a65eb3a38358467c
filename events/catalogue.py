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


MISSING_EVENT_ID = (
    "event_id: required on the wire. Set it once when the event is made and send the same id on every "
    "retry: the worker applies each id once, so only then is a retried publish safe"
)


def parse_event(payload: Mapping[str, Any] | BaseEvent, *, wire: bool = True) -> Event:
    """Validate a raw payload into its event model; `EventValidationError` names every bad field.

    Validation is strict, as the schema (`komas events schema`) says: a number is a number and text
    is text ("123.5" is not a price, true is not 1, a timestamp is ISO 8601 text with a zone). A
    payload from the wire (`wire=True`, what the worker and `POST /api/events` read) must carry
    its `event_id`; a dict handed to a publisher (`wire=False`) gets a new one when it has none.
    """
    if isinstance(payload, EVENT_TYPES):
        return payload  # type: ignore[return-value]  # already validated at construction
    if not isinstance(payload, Mapping):
        raise EventValidationError(f"event: expected a JSON object, got {type(payload).__name__}")
    missing_id = wire and "event_id" not in payload
    try:  # NaN, big integers, surrogates and deep nesting are refused by the envelope's own validator
        event = _ADAPTER.validate_python(payload, strict=True)
    except ValidationError as exc:
        refusal = EventValidationError.from_pydantic(exc)
        if missing_id:  # every problem at once
            lines = [MISSING_EVENT_ID, *refusal.errors]
            raise EventValidationError("invalid event: " + "; ".join(lines), errors=lines) from None
        raise refusal from None
    except (ValueError, OverflowError, RecursionError) as exc:  # a validator's own failure: this payload only
        raise EventValidationError(f"event: {type(exc).__name__}: {exc}") from None
    if missing_id:
        raise EventValidationError(MISSING_EVENT_ID)
    return event


def parse_events(payloads: Sequence[Any], *, wire: bool = True) -> list[Event | EventValidationError]:
    """Validate many payloads (as `parse_event`); each comes back as its event or as the error that refused it.

    A batch that is all valid (the usual case) is validated in one call, much cheaper than one call
    per event; only when something in it is wrong is each payload validated on its own.
    """
    whole = all(type(payload) is dict for payload in payloads) or all(isinstance(p, Mapping) for p in payloads)
    if whole and (not wire or all("event_id" in payload for payload in payloads)):
        try:
            return list(_LIST_ADAPTER.validate_python(payloads, strict=True))
        except (ValidationError, ValueError, OverflowError, RecursionError):
            pass
    parsed: list[Event | EventValidationError] = []
    for payload in payloads:
        try:
            parsed.append(parse_event(payload, wire=wire))
        except EventValidationError as exc:
            parsed.append(exc)
    return parsed
