"""Tables of the persistence core: the seed's five plus what exactly-once delivery needs.

Delete rules are explicit: deleting a preset detaches its bots (`SET NULL`, no dangling
`preset_id`) and removes its backtest history; deleting a bot removes its signals (`CASCADE`,
no orphan signals).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.orm.attributes import set_committed_value

from worker.store.types import JSONType, Money, UTCDateTime, utc_now

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SIGNAL_STATUSES = ("pending", "active", "closed", "cancelled")
DIRECTIONS = ("long", "short")
SETTING_TYPES = ("str", "int", "float", "bool", "json", "null")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
    }

    def to_dict(self) -> dict[str, Any]:
        """Column values by name (datetimes stay datetimes)."""
        return {column.key: getattr(self, column.key) for column in self.__mapper__.column_attrs}


class Setting(Base):
    """Typed key/value: `value` holds JSON, `value_type` says what it was when set."""

    __tablename__ = "settings"
    __table_args__ = (CheckConstraint(f"value_type IN {SETTING_TYPES}", name="value_type"),)

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    value_type: Mapped[str] = mapped_column(String(10))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


def _restore_value_type(setting: Setting, *_: Any) -> None:
    """Give a loaded setting back the type it was set with.

    JSON storage blurs numbers: SQLite's NUMERIC affinity of a JSON column turns a bare 3.0 into the
    integer 3, PostgreSQL's JSONB turns 1e20 into 100000000000000000000. `value_type` knows better.
    """
    value = setting.__dict__.get("value")
    if setting.__dict__.get("value_type") == "float" and isinstance(value, int) and not isinstance(value, bool):
        set_committed_value(setting, "value", float(value))


event.listen(Setting, "load", _restore_value_type)
event.listen(Setting, "refresh", _restore_value_type)


class Preset(Base):
    """Saved indicator settings and the performance of their latest backtest."""

    __tablename__ = "presets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    indicator_type: Mapped[str] = mapped_column(String(50), default="trg", index=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    is_favorite: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    win_rate: Mapped[float | None] = mapped_column(Float)
    profit_factor: Mapped[float | None] = mapped_column(Float)
    total_profit_percent: Mapped[float | None] = mapped_column(Float)
    max_drawdown_percent: Mapped[float | None] = mapped_column(Float)
    sharpe_ratio: Mapped[float | None] = mapped_column(Float)
    #: When the metrics above were true (`worker.store.rules.version`): an older backtest does not overwrite them.
    metrics_version: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)
    last_used_at: Mapped[datetime | None] = mapped_column()


class Bot(Base):
    """A trading bot's configuration, switches and running stats (kept equal to its closed signals)."""

    __tablename__ = "bots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    symbol: Mapped[str] = mapped_column(String(40))
    timeframe: Mapped[str] = mapped_column(String(10))
    preset_id: Mapped[int | None] = mapped_column(ForeignKey("presets.id", ondelete="SET NULL"), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    position_size: Mapped[float] = mapped_column(Float, default=100.0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    #: When `is_active` was last set (`worker.store.rules.version`): an older toggle arriving later does not win.
    active_version: Mapped[str | None] = mapped_column(String(80))
    telegram_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    telegram_chat_id: Mapped[str | None] = mapped_column(String(100))
    total_signals: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    total_wins: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    total_losses: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    #: The exact sum of its closed signals' `pnl_amount` (units of 10^-8, see `worker.store.money`).
    total_profit: Mapped[float] = mapped_column(Money, default=0.0, server_default=text("0"))
    last_signal_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class Signal(Base):
    """A trading signal, addressed by producers through its unique `uid`."""

    __tablename__ = "signals"
    __table_args__ = (
        CheckConstraint(f"status IN {SIGNAL_STATUSES}", name="status"),
        CheckConstraint(f"direction IN {DIRECTIONS}", name="direction"),
        Index("ix_signals_bot_id_status", "bot_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(100), unique=True)
    bot_id: Mapped[int] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(40), index=True)
    timeframe: Mapped[str] = mapped_column(String(10))
    direction: Mapped[str] = mapped_column(String(5))
    status: Mapped[str] = mapped_column(String(10), default="active")
    entry_price: Mapped[float] = mapped_column(Float)
    stop_loss: Mapped[float | None] = mapped_column(Float)
    take_profits: Mapped[list[Any]] = mapped_column(default=list)
    indicator_values: Mapped[dict[str, Any]] = mapped_column(default=dict)
    exit_price: Mapped[float | None] = mapped_column(Float)
    exit_reason: Mapped[str | None] = mapped_column(String(50))
    pnl_percent: Mapped[float | None] = mapped_column(Float)
    pnl_amount: Mapped[float | None] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    closed_at: Mapped[datetime | None] = mapped_column()


class DataCacheInfo(Base):
    """Metadata of a cached candle file; one row per symbol, timeframe and source."""

    __tablename__ = "data_cache"
    __table_args__ = (UniqueConstraint("symbol", "timeframe", "source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(40))
    timeframe: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(50), default="binance")
    candles_count: Mapped[int] = mapped_column(Integer, default=0)
    start_time: Mapped[datetime | None] = mapped_column()
    end_time: Mapped[datetime | None] = mapped_column()
    file_path: Mapped[str | None] = mapped_column(String(500))
    file_size: Mapped[int | None] = mapped_column(BigInteger)  # bytes; PostgreSQL's INTEGER stops at 2 GiB
    is_complete: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class ProcessedEvent(Base):
    """Inbox of applied event ids, written in the same transaction as their effect."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(50))
    applied_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)


class BacktestResult(Base):
    """History of backtest metrics; the latest also lands on the preset."""

    __tablename__ = "backtest_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    preset_id: Mapped[int] = mapped_column(ForeignKey("presets.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    symbol: Mapped[str] = mapped_column(String(40))
    timeframe: Mapped[str] = mapped_column(String(10))
    win_rate: Mapped[float | None] = mapped_column(Float)
    profit_factor: Mapped[float | None] = mapped_column(Float)
    total_profit_percent: Mapped[float | None] = mapped_column(Float)
    max_drawdown_percent: Mapped[float | None] = mapped_column(Float)
    sharpe_ratio: Mapped[float | None] = mapped_column(Float)
    total_trades: Mapped[int] = mapped_column(Integer, default=0)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)


class DeadLetter(Base):
    """An event (or raw job) that could not be applied, kept with (the start of) its payload and the reason.

    `fingerprint` is the event id when known, else a hash of the whole raw payload, so the same bad
    input seen again counts an attempt instead of adding a row. `payload` holds at most the first
    64 KiB of the payload (`payload_truncated` when it holds less than all of it); `payload_size`
    and `payload_sha256` describe the whole payload. Ids are never reused (AUTOINCREMENT on SQLite,
    a sequence on PostgreSQL): an id an operator saw keeps meaning the same letter after a drop.
    """

    __tablename__ = "dead_letters"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    event_id: Mapped[str | None] = mapped_column(String(36), index=True)
    event_type: Mapped[str | None] = mapped_column(String(50))
    payload: Mapped[str] = mapped_column(Text)
    payload_size: Mapped[int] = mapped_column(BigInteger)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    payload_truncated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    reason: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    first_seen_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_seen_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    replayed_at: Mapped[datetime | None] = mapped_column()


class ParkedEvent(Base):
    """A valid event whose dependency is missing (a close before its create), waiting to be retried.

    `waiting_for` names what it waits for ('bot' or 'preset' with `waiting_for_id`, 'signal' with
    `waiting_for_uid`), so the background pass finds the events whose dependency has arrived with
    one query instead of trying each; NULL (rows parked before revision 0004) means unknown: such an
    event is simply retried on its back-off.
    """

    __tablename__ = "parked_events"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(50))
    payload: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    first_seen_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    waiting_for: Mapped[str | None] = mapped_column(String(20), index=True)
    waiting_for_id: Mapped[int | None] = mapped_column(BigInteger)
    waiting_for_uid: Mapped[str | None] = mapped_column(String(100))


class WriterFence(Base):
    """The highest fencing token that has written to a partition: write transactions of a lower one are refused.

    One row per partition ("main" until partitions exist); see `worker.runtime.lease`.
    """

    __tablename__ = "writer_fences"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[int] = mapped_column(BigInteger)
