"""Request and response bodies of the API, separate from the tables so the wire format can stay put.

Request bodies reuse the field types of the command events (`events.commands`), so the API refuses
with 422 exactly what the worker would refuse, before anything is queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from events.commands import Id, Name, PresetChanges, SettingKey
from events.envelope import JsonObject
from worker.api.render import encodable

T = TypeVar("T")

IndicatorType = Annotated[str, StringConstraints(min_length=1, max_length=50)]
Tag = Annotated[str, StringConstraints(max_length=100)]
Percent = Annotated[float, Field(ge=0, le=100)]
NonNegative = Annotated[float, Field(ge=0)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


def _stored_object(value: Any) -> dict[str, Any]:
    """A JSON object column as the API shows it (`encodable`); anything else stored there is wrapped, not refused."""
    rendered = encodable(value)
    return rendered if isinstance(rendered, dict) else {"$stored": rendered}


def _stored_list(value: Any) -> list[Any]:
    rendered = encodable(value)
    return rendered if isinstance(rendered, list) else [rendered]


#: JSON read from the database, made encodable (see `worker.api.render`): reads never fail on what is stored.
StoredValue = Annotated[Any, BeforeValidator(encodable)]
StoredObject = Annotated[dict[str, Any], BeforeValidator(_stored_object)]
StoredList = Annotated[list[Any], BeforeValidator(_stored_list)]


class _Out(BaseModel):
    """Response models read straight from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


class _In(BaseModel):
    """Request bodies: unknown fields are refused (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --- settings ---------------------------------------------------------------------------------


class SettingIn(_In):
    key: SettingKey
    value: Any = Field(description="Any JSON value; it keeps its type (str, int, float, bool, json, null).")
    description: str | None = None


class SettingOut(_Out):
    key: str
    value: StoredValue
    value_type: str
    description: str | None
    created_at: datetime
    updated_at: datetime


# --- presets ----------------------------------------------------------------------------------


class PresetIn(_In):
    name: Name
    description: str | None = None
    indicator_type: IndicatorType = "trg"
    settings: JsonObject = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list)
    is_favorite: bool = False


#: The preset update command's rule, refused here already (a 422 naming the fields): only what can be empty may be null.
_NOT_NULL = tuple(name for name in PresetChanges.model_fields if name not in PresetChanges.clearable)


class PresetUpdate(_In):
    """Only the fields given change; `description` may be null (cleared), the others may not."""

    name: Name | None = None
    description: str | None = None
    indicator_type: IndicatorType | None = None
    settings: JsonObject | None = None
    tags: list[Tag] | None = None
    is_favorite: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = [name for name in _NOT_NULL if name in data and data[name] is None]
            if nulls:
                raise ValueError(f"{', '.join(nulls)}: may not be null (leave the field out to keep it)")
        return data


class PerformanceIn(_In):
    """Metrics of a backtest; the ones left out keep their values."""

    win_rate: Percent | None = None
    profit_factor: NonNegative | None = None
    total_profit_percent: Finite | None = None
    max_drawdown_percent: NonNegative | None = None
    sharpe_ratio: Finite | None = None


class FavoriteIn(_In):
    is_favorite: bool | None = Field(default=None, description="The new state; absent (or no body) toggles it.")


class PresetOut(_Out):
    id: int
    name: str
    description: str | None
    indicator_type: str
    settings: StoredObject
    tags: StoredList
    is_favorite: bool
    win_rate: float | None
    profit_factor: float | None
    total_profit_percent: float | None
    max_drawdown_percent: float | None
    sharpe_ratio: float | None
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None


# --- cache ------------------------------------------------------------------------------------


class CacheOut(_Out):
    id: int
    symbol: str
    timeframe: str
    source: str
    candles_count: int
    start_time: datetime | None
    end_time: datetime | None
    file_path: str | None
    file_size: int | None
    is_complete: bool
    created_at: datetime
    updated_at: datetime


# --- bots and signals -------------------------------------------------------------------------


class BotOut(_Out):
    id: int
    name: str
    symbol: str
    timeframe: str
    preset_id: int | None
    config: StoredObject
    position_size: float
    is_active: bool
    telegram_enabled: bool
    telegram_chat_id: str | None
    total_signals: int
    total_wins: int
    total_losses: int
    total_profit: float
    last_signal_at: datetime | None
    created_at: datetime
    updated_at: datetime


class BotStats(BaseModel):
    """Derived from the bot's counters and its open signals."""

    total_signals: int
    total_wins: int
    total_losses: int
    total_profit: float
    win_rate: float | None = Field(description="Wins per closed signal, in percent; null before the first close.")
    open_signals: int


class BotDetail(BotOut):
    stats: BotStats


class SignalOut(_Out):
    id: int
    uid: str
    bot_id: int
    symbol: str
    timeframe: str
    direction: str
    status: str
    entry_price: float
    stop_loss: float | None
    take_profits: StoredList
    indicator_values: StoredObject
    exit_price: float | None
    exit_reason: str | None
    pnl_percent: float | None
    pnl_amount: float | None
    created_at: datetime
    closed_at: datetime | None


class DeadLetterOut(_Out):
    id: int
    event_id: str | None
    event_type: str | None
    #: At most the first 64 KiB of what arrived; `payload_size` and `payload_sha256` describe all of it.
    payload: str
    payload_size: int | None
    payload_sha256: str | None
    payload_truncated: bool
    reason: str
    attempts: int
    first_seen_at: datetime
    last_seen_at: datetime
    replayed_at: datetime | None


class Page(BaseModel, Generic[T]):
    """One page of a long list, with the total that matches the filters."""

    items: list[T]
    total: int
    limit: int
    offset: int


# --- the rest ---------------------------------------------------------------------------------


class Queued(BaseModel):
    """202, of every write: queued, not applied yet; the worker applies each event exactly once when it runs.

    One shape for one event (a write through a resource) and for many (`POST /api/events`).
    """

    status: Literal["queued"] = "queued"
    event_ids: list[str] = Field(description="The events queued, in the order given.")
    job_ids: list[str] = Field(description="The arq jobs that carry them.")


class Unconfirmed(BaseModel):
    """503 of a write when Redis failed: it says whether the write may still apply and how to retry safely."""

    detail: str
    may_apply: bool = Field(description="True when the job may have been queued before Redis failed.")
    event_ids: list[str]
    idempotency_key: str = Field(description="Send the retry with this `Idempotency-Key`: it applies at most once.")


class Problem(BaseModel):
    """Every error answer: `detail` says what is wrong in words a person can act on."""

    detail: Any


class DatabaseInfo(BaseModel):
    backend: str
    database: str | None = Field(description="File of a SQLite database, name of a PostgreSQL one.")
    size_bytes: int | None
    counts: dict[str, int]
    applied_events: int
    last_applied_at: datetime | None


class Health(BaseModel):
    status: Literal["ok", "down"]
    database: str
    redis: str


__all__ = [
    "BotDetail",
    "BotOut",
    "BotStats",
    "CacheOut",
    "DatabaseInfo",
    "DeadLetterOut",
    "FavoriteIn",
    "Health",
    "Id",
    "Page",
    "PerformanceIn",
    "PresetIn",
    "PresetOut",
    "PresetUpdate",
    "Problem",
    "Queued",
    "SettingIn",
    "SettingOut",
    "SignalOut",
    "Unconfirmed",
]


@dataclass(frozen=True)
class WriteRequest:
    """Who a write is: its event id, the key to retry it with, and what it asked."""

    event_id: UUID
    key: str
    key_given: bool
    fingerprint: str
