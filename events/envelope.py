"""The envelope every event carries, and the field types events share."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, get_args, get_origin
from uuid import UUID, uuid4

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveFloat,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from events.errors import EventValidationError

SCHEMA_VERSION = 1
ZERO = timedelta(0)

Timeframe = Annotated[
    str,
    StringConstraints(pattern=r"^[1-9][0-9]{0,2}[smhdwM]$"),
    Field(description="Candle timeframe such as 1m, 5m, 1h, 4h, 1d, 1w, 1M.", examples=["1h"]),
]
Symbol = Annotated[
    str,
    StringConstraints(min_length=2, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"),
    Field(description="Trading pair, e.g. BTCUSDT.", examples=["BTCUSDT"]),
]
SignalUid = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@-]+$"),
    Field(description="Producer-made unique id of a signal; lets a bot close it without the database id."),
]
Price = Annotated[PositiveFloat, Field(description="A price; must be > 0.")]
JsonObject = dict[str, Any]

#: Integers are signed 64-bit on the wire (what the database stores); a larger one is refused, not rounded.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Free-form objects (indicator values, params, settings) nest at most this deep, counted from the event.
MAX_DEPTH = 32

#: An ISO 8601 date-time with a time zone, in the years 2000 to 2099, with a day that exists: the only text
#: a timestamp may be. The schema states the same pattern, so producers and validators agree exactly.
TIMESTAMP_PATTERN = (
    r"^(?:20[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    r"|20[0-9]{2}-(?:0[13-9]|1[0-2])-(?:29|30)"
    r"|20[0-9]{2}-(?:0[13578]|1[02])-31"
    r"|20(?:[02468][048]|[13579][26])-02-29)"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID = re.compile(UUID_PATTERN)


def _timestamp_text(value: Any) -> Any:
    """On the wire a timestamp is text of the one form above (never an epoch number); in Python, a datetime.

    Parsed here, so the wire's strict validation (`events.catalogue`) sees a datetime.
    """
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _TIMESTAMP.match(value):
        return datetime.fromisoformat(value)
    raise ValueError(
        "must be an ISO 8601 date-time with seconds and a time zone, between 2000 and 2099, e.g. 2026-01-01T12:00:00Z"
    )


def _in_range_utc(value: datetime) -> datetime:
    """Aware UTC, refusing years a conversion could overflow on (a datetime built in Python skips the pattern)."""
    if not 2000 <= value.year <= 2099:
        raise ValueError("must be between the years 2000 and 2099")
    if value.tzinfo is UTC:
        return value
    if value.utcoffset() == ZERO:  # pydantic's own UTC tzinfo makes astimezone() slow
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _uuid_text(value: Any) -> Any:
    if isinstance(value, UUID):
        return value
    if isinstance(value, str) and _UUID.match(value):
        return UUID(value)
    raise ValueError("must be a UUID in its text form, e.g. 0b6f4bd4-4bd5-4a5c-9a3e-4b4f2b1f7f4e")


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_timestamp_text),
    AfterValidator(_in_range_utc),
    WithJsonSchema({"type": "string", "pattern": TIMESTAMP_PATTERN, "description": "ISO 8601 with a time zone"}),
]
EventId = Annotated[
    UUID,
    BeforeValidator(_uuid_text),
    WithJsonSchema({"type": "string", "pattern": UUID_PATTERN}),
]


def check_json_value(value: Any, path: str = "", depth: int = 0) -> None:
    """Refuse what JSON text may carry but the contract does not: NaN and infinity, integers beyond 64 bits,
    lone UTF-16 surrogates (in values and keys), and nesting deeper than `MAX_DEPTH`.

    One walk over every value of an event, on the hot path: ASCII strings, small integers and empty
    containers cost a type test each and no call.
    """
    if depth > MAX_DEPTH:
        raise EventValidationError(f"{path or 'event'}: nested more than {MAX_DEPTH} levels deep")
    items = _children(value)
    if items is None:
        _check_scalar(value, path or "event")
        return
    for key, item in items:
        if type(key) is str and not key.isascii():
            _check_text(key, f"{path}.{key!r}" if path else repr(key))
        kind = type(item)
        if kind is str:
            if not item.isascii():
                _check_text(item, f"{path}.{key}" if path else str(key))
        elif kind is int:
            if not INT64_MIN <= item <= INT64_MAX:
                raise EventValidationError(f"{f'{path}.{key}' if path else key}: integer beyond 64 bits")
        elif kind is bool or item is None:
            continue
        elif kind is float:
            if not math.isfinite(item):
                raise EventValidationError(f"{f'{path}.{key}' if path else key}: NaN and infinity are not allowed")
        elif item:
            check_json_value(item, f"{path}.{key}" if path else str(key), depth + 1)


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise EventValidationError(f"{path}: a lone UTF-16 surrogate is not text (cut inside a character?)") from None


def _check_scalar(value: Any, path: str) -> None:
    if isinstance(value, str):
        if not value.isascii():
            _check_text(value, path)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise EventValidationError(f"{path}: NaN and infinity are not allowed")
    elif isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        raise EventValidationError(f"{path}: integer beyond 64 bits")


def _children(value: Any) -> Any:
    """The (key, item) pairs of a JSON container, or None for anything else."""
    if isinstance(value, dict | Mapping):
        return value.items()
    if isinstance(value, list | tuple):
        return enumerate(value)
    return None


def reject_non_finite(value: Any, path: str = "") -> None:
    """Refuse NaN/inf anywhere, also in free-form dicts that pydantic does not check.

    On the hot path of every event: strings and integers cost one type test and no call.
    """
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EventValidationError(f"{path or 'event'}: NaN and infinity are not allowed")
        return
    items = _children(value)
    if items is None:
        return
    for key, item in items:
        kind = type(item)
        if kind is str or kind is int or kind is bool or not item:  # not item: None, 0.0, empty containers
            continue
        if kind is float and math.isfinite(item):
            continue
        reject_non_finite(item, f"{path}.{key}" if path else str(key))


def _is_free_form(annotation: Any) -> bool:
    """Whether values of this type can hold floats pydantic does not check (dicts, Any)."""
    if annotation is Any:
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_free_form(get_args(annotation)[0])
    if origin is dict or annotation is dict:
        return True
    return any(_is_free_form(arg) for arg in get_args(annotation))


_FREE_FORM: dict[type[BaseModel], tuple[str, ...]] = {}


def _free_form_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of `model` whose values the NaN walk must look into (found once per model)."""
    names = _FREE_FORM.get(model)
    if names is None:
        names = _FREE_FORM[model] = tuple(
            name for name, field in model.model_fields.items() if _is_free_form(field.annotation)
        )
    return names


def utc_now() -> datetime:
    """Aware UTC now; the default for `occurred_at`."""
    return datetime.now(UTC)


class BaseEvent(BaseModel):
    """The envelope: identity, time, origin and version of every event."""

    #: No stripping of whitespace: the schema counts lengths of the text as sent, so the parser does too.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: str = Field(description="Event type; fixed by each model of the catalogue.")
    event_id: EventId = Field(
        default_factory=uuid4,
        description="Producer-made id, the unit of deduplication: required on the wire, reused on every retry.",
    )
    occurred_at: Timestamp = Field(default_factory=utc_now, description="When it happened (aware, UTC).")
    source: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        default="unknown", description="Who sent it, e.g. bot:12, optimizer, api."
    )
    schema_version: Literal[1] = 1

    @model_validator(mode="before")
    @classmethod
    def _json_everywhere(cls, data: Any) -> Any:
        """What pydantic does not check, in every field and free-form object: see `check_json_value`."""
        if isinstance(data, Mapping):
            try:
                check_json_value(data)
            except EventValidationError as exc:
                raise ValueError(str(exc)) from None
        return data

    def to_wire(self) -> JsonObject:
        """JSON-safe dict, the form the event travels in.

        Checked again here: the model is frozen but its nested dicts are not, and JSON mode would
        silently turn a NaN put into them after construction into null.
        """
        self._check_free_form()
        return self.model_dump(mode="json")

    def to_json(self) -> bytes:
        """`to_wire()` as compact UTF-8 JSON, written by pydantic directly: what publishers send.

        The same bytes as `events.wire.dumps(event.to_wire())` (tested), about four times faster:
        no dict is built and walked again on the way.
        """
        self._check_free_form()
        return self.__pydantic_serializer__.to_json(self)

    def _check_free_form(self) -> None:
        for name in _free_form_fields(type(self)):
            reject_non_finite(getattr(self, name), name)
