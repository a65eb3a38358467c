"""Event models: the envelope every event carries and the catalogue of event types.

One pydantic model per type, joined in a discriminated union on `type`, so a payload from any
language is validated the same way by the publisher and by the worker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from events.errors import EventValidationError

SCHEMA_VERSION = 1

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


def utc_now() -> datetime:
    """Aware UTC now; the default for `occurred_at`."""
    return datetime.now(UTC)


class BaseEvent(BaseModel):
    """The envelope: identity, time, origin and version of every event."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, str_strip_whitespace=True)

    type: str = Field(description="Event type; fixed by each model of the catalogue.")
    event_id: UUID = Field(default_factory=uuid4, description="Producer-made id; the unit of deduplication.")
    occurred_at: AwareDatetime = Field(default_factory=utc_now, description="When it happened (aware, UTC).")
    source: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        default="unknown", description="Who sent it, e.g. bot:12, optimizer, api."
    )
    schema_version: Literal[1] = 1

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def to_wire(self) -> JsonObject:
        """JSON-safe dict, the form the event travels in."""
        return self.model_dump(mode="json")


class TakeProfit(BaseModel):
    """One take-profit level of a signal."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    percent: float = Field(gt=0, description="Distance from entry, in percent.")
    amount: float = Field(gt=0, le=100, description="Share of the position closed here, in percent.")
    price: Price


class SignalCreated(BaseEvent):
    """A bot opened a signal."""

    type: Literal["signal.created"] = "signal.created"
    signal_uid: SignalUid
    bot_id: int = Field(gt=0)
    symbol: Symbol
    timeframe: Timeframe
    direction: Literal["long", "short"]
    entry_price: Price
    stop_loss: Price | None = None
    take_profits: list[TakeProfit] = Field(default_factory=list, max_length=20)
    indicator_values: JsonObject = Field(default_factory=dict)


class SignalClosed(BaseEvent):
    """A signal ended. A win is `pnl_percent > 0`."""

    type: Literal["signal.closed"] = "signal.closed"
    signal_uid: SignalUid
    exit_price: Price
    exit_reason: Annotated[str, StringConstraints(min_length=1, max_length=50)] = Field(
        examples=["tp1", "sl"]
    )
    pnl_percent: float
    pnl_amount: float | None = Field(
        default=None,
        description="Profit in quote currency; derived from the bot's position_size when absent.",
    )


class BacktestFinished(BaseEvent):
    """The optimizer finished a backtest of a preset: its metrics become the preset's performance."""

    type: Literal["backtest.finished"] = "backtest.finished"
    preset_id: int = Field(gt=0)
    symbol: Symbol
    timeframe: Timeframe
    win_rate: float = Field(ge=0, le=100)
    profit_factor: float = Field(ge=0)
    total_profit_percent: float
    max_drawdown_percent: float = Field(ge=0)
    sharpe_ratio: float
    total_trades: int = Field(ge=0)
    params: JsonObject = Field(default_factory=dict)


class BotToggled(BaseEvent):
    """An operator or the server switched a bot on or off."""

    type: Literal["bot.toggled"] = "bot.toggled"
    bot_id: int = Field(gt=0)
    active: bool


Event = Annotated[
    SignalCreated | SignalClosed | BacktestFinished | BotToggled,
    Field(discriminator="type"),
]
EVENT_TYPES: tuple[type[BaseEvent], ...] = (SignalCreated, SignalClosed, BacktestFinished, BotToggled)
_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def _reject_nan(value: Any, path: str = "") -> None:
    """Refuse NaN/inf anywhere, also in free-form dicts that pydantic does not check."""
    if isinstance(value, float) and not math.isfinite(value):
        raise EventValidationError(f"{path or 'event'}: NaN and infinity are not allowed")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _reject_nan(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _reject_nan(item, f"{path}.{index}" if path else str(index))


def parse_event(payload: Mapping[str, Any] | BaseEvent) -> Event:
    """Validate a raw payload into its event model; `EventValidationError` names every bad field."""
    if isinstance(payload, EVENT_TYPES):
        return payload  # type: ignore[return-value]  # already validated at construction
    if not isinstance(payload, Mapping):
        raise EventValidationError(f"event: expected a JSON object, got {type(payload).__name__}")
    _reject_nan(payload)
    try:
        return _ADAPTER.validate_python(payload)
    except ValidationError as exc:
        raise EventValidationError.from_pydantic(exc) from None
