"""Trading events: what bots and the optimizer report."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from events.envelope import BaseEvent, JsonObject, Price, SignalUid, Symbol, Timeframe


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
    exit_reason: Annotated[str, StringConstraints(min_length=1, max_length=50)] = Field(examples=["tp1", "sl"])
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
