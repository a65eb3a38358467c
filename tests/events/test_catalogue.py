"""The event catalogue: envelope defaults, the four trading events, and what validation refuses."""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from events import (
    BacktestFinished,
    BaseEvent,
    BotToggled,
    EventValidationError,
    SignalClosed,
    SignalCreated,
    TakeProfit,
    parse_event,
)
from events.catalogue import parse_events
from events.wire import dumps, loads

SIGNAL_CREATED: dict[str, Any] = {
    "type": "signal.created",
    "event_id": "5f0f8f1e-7a61-4c1a-9d55-0b7a8a3f0001",
    "signal_uid": "bot-1:BTCUSDT:0001",
    "bot_id": 1,
    "symbol": "BTCUSDT",
    "timeframe": "1h",
    "direction": "long",
    "entry_price": 65000.5,
    "stop_loss": 64000.0,
    "take_profits": [{"percent": 1.5, "amount": 50, "price": 65975.0}, {"percent": 3, "amount": 50, "price": 66950}],
    "indicator_values": {"rsi": 31.2, "bands": {"upper": 66000.0, "lower": [64000.0, 63500.0]}},
    "source": "bot:1",
}
SIGNAL_CLOSED: dict[str, Any] = {
    "type": "signal.closed",
    "event_id": "5f0f8f1e-7a61-4c1a-9d55-0b7a8a3f0002",
    "signal_uid": "bot-1:BTCUSDT:0001",
    "exit_price": 65975.0,
    "exit_reason": "tp1",
    "pnl_percent": 1.5,
    "pnl_amount": 1.5,
}
BACKTEST_FINISHED: dict[str, Any] = {
    "type": "backtest.finished",
    "event_id": "5f0f8f1e-7a61-4c1a-9d55-0b7a8a3f0003",
    "preset_id": 7,
    "symbol": "ETHUSDT",
    "timeframe": "4h",
    "win_rate": 61.5,
    "profit_factor": 1.8,
    "total_profit_percent": -3.2,
    "max_drawdown_percent": 12.0,
    "sharpe_ratio": -0.4,
    "total_trades": 120,
    "params": {"period": 14, "mult": 2.5, "grid": [1.0, 2.0]},
    "source": "optimizer",
}
BOT_TOGGLED: dict[str, Any] = {
    "type": "bot.toggled",
    "event_id": "5f0f8f1e-7a61-4c1a-9d55-0b7a8a3f0004",
    "bot_id": 3,
    "active": True,
    "source": "api",
}

EXAMPLES: dict[str, tuple[dict[str, Any], type[BaseEvent]]] = {
    "signal.created": (SIGNAL_CREATED, SignalCreated),
    "signal.closed": (SIGNAL_CLOSED, SignalClosed),
    "backtest.finished": (BACKTEST_FINISHED, BacktestFinished),
    "bot.toggled": (BOT_TOGGLED, BotToggled),
}


def refused(payload: Any) -> EventValidationError:
    """Parse a payload that must be refused and return the error."""
    with pytest.raises(EventValidationError) as info:
        parse_event(payload)
    return info.value


# --- the envelope -------------------------------------------------------------------------------


def test_event_id_is_a_new_uuid4_for_each_event() -> None:
    first = BotToggled(bot_id=1, active=True)
    second = BotToggled(bot_id=1, active=True)
    assert isinstance(first.event_id, uuid.UUID)
    assert first.event_id.version == 4
    assert first.event_id != second.event_id


def test_occurred_at_defaults_to_aware_utc_now() -> None:
    before = datetime.now(UTC)
    event = BotToggled(bot_id=1, active=False)
    after = datetime.now(UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert before <= event.occurred_at <= after


def test_envelope_defaults() -> None:
    event = BotToggled(bot_id=1, active=False)
    assert event.type == "bot.toggled"
    assert event.source == "unknown"
    assert event.schema_version == 1


def test_a_non_utc_aware_time_is_converted_to_utc() -> None:
    kyiv = timezone(timedelta(hours=3))
    event = BotToggled(bot_id=1, active=True, occurred_at=datetime(2024, 5, 1, 12, 30, tzinfo=kyiv))
    assert event.occurred_at.tzinfo == UTC
    assert event.occurred_at == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert event.to_wire()["occurred_at"].startswith("2024-05-01T09:30:00")


def test_a_non_utc_time_in_a_payload_is_converted_to_utc() -> None:
    event = parse_event({**BOT_TOGGLED, "occurred_at": "2024-01-01T02:00:00+02:00"})
    assert event.occurred_at == datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)


def test_a_naive_time_is_refused_by_the_model() -> None:
    with pytest.raises(ValidationError, match="occurred_at"):
        BotToggled(bot_id=1, active=True, occurred_at=datetime(2024, 1, 1))


def test_a_naive_time_is_refused_by_parse_event() -> None:
    error = refused({**BOT_TOGGLED, "occurred_at": "2024-01-01T00:00:00"})
    assert "occurred_at" in str(error)


def test_an_unknown_schema_version_is_refused() -> None:
    assert "schema_version" in str(refused({**BOT_TOGGLED, "schema_version": 2}))


def test_events_are_frozen() -> None:
    event = BotToggled(bot_id=1, active=True)
    with pytest.raises(ValidationError):
        event.active = False  # type: ignore[misc]


# --- the four trading events --------------------------------------------------------------------


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_a_valid_example_parses_into_its_class(name: str) -> None:
    payload, cls = EXAMPLES[name]
    event = parse_event(payload)
    assert type(event) is cls
    assert event.type == name
    wire = event.to_wire()
    for key, value in payload.items():
        assert wire[key] == value, key


def test_signal_created_built_in_python() -> None:
    event = SignalCreated(
        signal_uid="s-1",
        bot_id=2,
        symbol="BTCUSDT",
        timeframe="15m",
        direction="short",
        entry_price=100.0,
        take_profits=[TakeProfit(percent=1, amount=100, price=99.0)],
    )
    assert event.stop_loss is None
    assert event.indicator_values == {}
    assert event.take_profits[0].price == 99.0


def test_signal_closed_pnl_amount_is_optional() -> None:
    event = parse_event({k: v for k, v in SIGNAL_CLOSED.items() if k != "pnl_amount"})
    assert isinstance(event, SignalClosed)
    assert event.pnl_amount is None


def test_a_model_instance_passes_through_parse_event_unchanged() -> None:
    event = BotToggled(bot_id=1, active=True)
    assert parse_event(event) is event


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_json_round_trip_gives_an_equal_event(name: str) -> None:
    payload, _ = EXAMPLES[name]
    original = parse_event(payload)
    again = parse_event(loads(dumps(original.to_wire())))
    assert again == original
    assert again.event_id == original.event_id
    assert again.occurred_at == original.occurred_at


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_to_json_writes_the_bytes_dumps_writes_of_to_wire(name: str) -> None:
    payload, _ = EXAMPLES[name]
    event = parse_event(payload)
    assert event.to_json() == dumps(event.to_wire())


@pytest.mark.parametrize(
    "value",
    [
        1e16,
        1e-7,
        0.1,
        -0.0,
        5.0,
        1e300,
        2.2250738585072014e-308,
        2**63 - 1,
        -(2**63),
        'é✓\u2028\x00"\\',
        [1, {"a": []}],
    ],
)
def test_to_json_writes_free_form_values_as_dumps_does(value: Any) -> None:
    event = SignalCreated(**{**SIGNAL_CREATED, "indicator_values": {"v": value}})
    assert event.to_json() == dumps(event.to_wire())


def test_to_json_refuses_nan_put_into_a_free_form_dict_after_construction() -> None:
    event = SignalCreated(**{**SIGNAL_CREATED, "indicator_values": {"rsi": 1.0}})
    event.indicator_values["rsi"] = math.nan  # frozen model, mutable dict
    with pytest.raises(EventValidationError, match=re.escape("indicator_values.rsi")):
        event.to_json()


def test_round_trip_keeps_a_non_utc_time_as_the_same_instant() -> None:
    original = SignalClosed(
        signal_uid="x",
        exit_price=1.0,
        exit_reason="sl",
        pnl_percent=-1.0,
        occurred_at=datetime(2024, 3, 1, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=-5))),
    )
    again = parse_event(loads(dumps(original.to_wire())))
    assert again == original
    assert again.occurred_at == datetime(2024, 3, 2, 4, 59, 59, 123456, tzinfo=UTC)


# --- what validation refuses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "field", "value"),
    [
        ("signal.created", "entry_price", -1.0),
        ("signal.created", "entry_price", 0),
        ("signal.created", "stop_loss", -5.0),
        ("signal.closed", "exit_price", 0.0),
        ("signal.closed", "exit_price", -65000),
    ],
)
def test_negative_or_zero_prices_are_refused(example: str, field: str, value: float) -> None:
    payload, _ = EXAMPLES[example]
    error = refused({**payload, field: value})
    assert field in str(error)
    assert any(line.startswith(field) for line in error.errors)


def test_a_take_profit_price_of_zero_is_refused_naming_the_nested_field() -> None:
    take_profits = [{"percent": 1, "amount": 50, "price": 0}]
    error = refused({**SIGNAL_CREATED, "take_profits": take_profits})
    assert "take_profits.0.price" in str(error)


@pytest.mark.parametrize("direction", ["up", "LONG", "", "buy"])
def test_an_unknown_direction_is_refused(direction: str) -> None:
    assert "direction" in str(refused({**SIGNAL_CREATED, "direction": direction}))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    ("example", "field"),
    [
        ("signal.created", "entry_price"),
        ("signal.created", "stop_loss"),
        ("signal.closed", "pnl_percent"),
        ("signal.closed", "pnl_amount"),
        ("backtest.finished", "sharpe_ratio"),
        ("backtest.finished", "total_profit_percent"),
    ],
)
def test_nan_and_inf_in_a_float_field_are_refused(example: str, field: str, bad: float) -> None:
    payload, _ = EXAMPLES[example]
    assert field in str(refused({**payload, field: bad}))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    ("example", "field", "nested", "path"),
    [
        ("signal.created", "indicator_values", {"rsi": "BAD"}, "indicator_values.rsi"),
        ("signal.created", "indicator_values", {"bands": {"lower": [1.0, "BAD"]}}, "indicator_values.bands.lower.1"),
        ("backtest.finished", "params", {"mult": "BAD"}, "params.mult"),
        ("backtest.finished", "params", {"grid": [{"x": "BAD"}]}, "params.grid.0.x"),
    ],
)
def test_nan_and_inf_nested_in_free_form_dicts_are_refused(
    example: str, field: str, nested: dict[str, Any], path: str, bad: float
) -> None:
    def substitute(value: Any) -> Any:
        if value == "BAD":
            return bad
        if isinstance(value, dict):
            return {key: substitute(item) for key, item in value.items()}
        if isinstance(value, list):
            return [substitute(item) for item in value]
        return value

    payload, _ = EXAMPLES[example]
    error = refused({**payload, field: substitute(nested)})
    assert path in str(error)


@pytest.mark.parametrize(
    ("build", "path"),
    [
        (
            lambda: SignalCreated(
                signal_uid="s",
                bot_id=1,
                symbol="BTCUSDT",
                timeframe="1h",
                direction="long",
                entry_price=1.0,
                indicator_values={"rsi": math.nan},
            ),
            "indicator_values.rsi",
        ),
        (lambda: BacktestFinished(**{**BACKTEST_FINISHED, "params": {"grid": [1.0, math.inf]}}), "params.grid.1"),
    ],
    ids=["indicator_values", "params"],
)
def test_nan_nested_in_a_model_built_in_python_is_refused(build: Any, path: str) -> None:
    """Found by these tests: such a model used to be accepted and `to_wire()` turned NaN into null."""
    with pytest.raises(ValueError, match=re.escape(path)):
        build()


@pytest.mark.parametrize("timeframe", ["2x", "0m", "", "1 h", "h", "1", "01m", "1000m", "1H", "-1m", "1.5h"])
def test_bad_timeframes_are_refused(timeframe: str) -> None:
    assert "timeframe" in str(refused({**SIGNAL_CREATED, "timeframe": timeframe}))


@pytest.mark.parametrize("timeframe", ["1m", "5m", "1h", "4h", "1d", "1w", "1M", "15m", "30s"])
def test_good_timeframes_pass(timeframe: str) -> None:
    created = parse_event({**SIGNAL_CREATED, "timeframe": timeframe})
    finished = parse_event({**BACKTEST_FINISHED, "timeframe": timeframe})
    assert isinstance(created, SignalCreated)
    assert isinstance(finished, BacktestFinished)
    assert created.timeframe == timeframe
    assert finished.timeframe == timeframe


def test_month_and_minute_are_told_apart() -> None:
    month = parse_event({**SIGNAL_CREATED, "timeframe": "1M"})
    assert isinstance(month, SignalCreated)
    assert month.timeframe == "1M"


@pytest.mark.parametrize("event_type", ["signal.exploded", "SIGNAL.CREATED", "", "signal"])
def test_an_unknown_type_is_refused(event_type: str) -> None:
    error = refused({**SIGNAL_CREATED, "type": event_type})
    assert str(error).startswith("invalid event: type:")


def test_a_missing_type_is_refused() -> None:
    error = refused({k: v for k, v in SIGNAL_CREATED.items() if k != "type"})
    assert "type" in str(error)


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_extra_fields_are_refused(name: str) -> None:
    payload, _ = EXAMPLES[name]
    error = refused({**payload, "leverage": 100})
    assert "leverage" in str(error)
    assert "Extra inputs" in str(error)


def test_extra_fields_in_a_take_profit_are_refused() -> None:
    take_profits = [{"percent": 1, "amount": 50, "price": 2, "trailing": True}]
    assert "take_profits.0.trailing" in str(refused({**SIGNAL_CREATED, "take_profits": take_profits}))


@pytest.mark.parametrize("win_rate", [100.01, 101, 1e9, -0.1])
def test_win_rate_outside_0_to_100_is_refused(win_rate: float) -> None:
    assert "win_rate" in str(refused({**BACKTEST_FINISHED, "win_rate": win_rate}))


@pytest.mark.parametrize("win_rate", [0, 100])
def test_win_rate_bounds_are_inclusive(win_rate: float) -> None:
    event = parse_event({**BACKTEST_FINISHED, "win_rate": win_rate})
    assert isinstance(event, BacktestFinished)
    assert event.win_rate == win_rate


@pytest.mark.parametrize(
    ("example", "field", "value"),
    [
        ("signal.created", "bot_id", 0),
        ("signal.created", "bot_id", "abc"),
        ("signal.created", "signal_uid", "has space"),
        ("signal.created", "symbol", "B"),
        ("signal.created", "event_id", "not-a-uuid"),
        ("signal.closed", "exit_reason", ""),
        ("backtest.finished", "preset_id", -1),
        ("backtest.finished", "total_trades", -1),
        ("backtest.finished", "max_drawdown_percent", -0.5),
        ("bot.toggled", "active", "maybe"),
    ],
)
def test_other_nonsense_is_refused_naming_the_field(example: str, field: str, value: Any) -> None:
    payload, _ = EXAMPLES[example]
    assert field in str(refused({**payload, field: value}))


def test_every_bad_field_is_named() -> None:
    error = refused({**SIGNAL_CREATED, "entry_price": -1, "direction": "up", "timeframe": "2x"})
    named = {line.split(":")[0] for line in error.errors}
    assert named == {"entry_price", "direction", "timeframe"}


@pytest.mark.parametrize("payload", [42, "signal.created", None, [SIGNAL_CREATED], b"{}"])
def test_a_payload_that_is_not_an_object_is_refused(payload: Any) -> None:
    assert "expected a JSON object" in str(refused(payload))


def test_event_validation_error_is_a_value_error() -> None:
    assert isinstance(refused({**BOT_TOGGLED, "bot_id": 0}), ValueError)


# --- many at once -------------------------------------------------------------------------------


def _toggle(bot_id: Any) -> dict[str, Any]:
    return {"type": "bot.toggled", "event_id": str(uuid.uuid4()), "bot_id": bot_id, "active": True}


def test_parse_events_gives_each_payload_its_event_or_its_error_in_order() -> None:
    payloads: list[Any] = [_toggle(1), _toggle("not a number"), "not an object", _toggle(4)]
    parsed = parse_events(payloads)
    assert [type(item).__name__ for item in parsed] == [
        "BotToggled",
        "EventValidationError",
        "EventValidationError",
        "BotToggled",
    ]
    assert "bot_id" in str(parsed[1])
    assert isinstance(parsed[3], BotToggled)
    assert parsed[3].bot_id == 4


def test_parse_events_of_a_valid_batch_equals_parsing_one_by_one() -> None:
    at = "2026-01-02T03:04:05+00:00"
    payloads = [_toggle(n) | {"event_id": str(uuid.uuid4()), "occurred_at": at} for n in range(1, 50)]
    assert parse_events(payloads) == [parse_event(payload) for payload in payloads]


@pytest.mark.parametrize(
    ("event_type", "id_field", "changes", "refused"),
    [
        ("preset.update", "preset_id", {"name": None}, "name cannot be null"),
        ("preset.update", "preset_id", {"settings": None}, "settings cannot be null"),
        ("bot.update", "bot_id", {"position_size": None}, "position_size cannot be null"),
        ("bot.update", "bot_id", {"preset_id": None}, None),
        ("preset.update", "preset_id", {"description": None}, None),
    ],
)
def test_update_commands_clear_only_what_can_be_empty(
    event_type: str, id_field: str, changes: dict[str, Any], refused: str | None
) -> None:
    payload = {"type": event_type, "event_id": str(uuid.uuid4()), id_field: 1, "changes": changes}
    if refused is None:
        assert parse_event(payload).changes == changes  # type: ignore[union-attr]
    else:
        with pytest.raises(EventValidationError, match=refused):
            parse_event(payload)
