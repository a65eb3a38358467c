"""The schema is the contract: standard JSON Schema 2020-12, and it refuses exactly what the wire parser refuses.

Instances come from the schema itself (hypothesis-jsonschema, free-form values bounded since it
cannot follow recursive references) and from mutations of valid events; `jsonschema` gives the
verdict each side must match. `tests/e2e/test_schema_contract.py` sends the same through the real
worker and the API.
"""

from __future__ import annotations

import contextlib
import copy
import json
import uuid
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from events.catalogue import parse_event
from events.errors import EventValidationError
from events.schema import catalogue_schema
from tests.events.test_catalogue import EXAMPLES

SCHEMA = catalogue_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def accepted_by_parser(payload: Any) -> bool:
    try:
        parse_event(payload)
    except EventValidationError:
        return False
    return True


def test_the_schema_is_standard_json_schema_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    text = json.dumps(SCHEMA)
    assert '"discriminator"' not in text  # OpenAPI's keyword, refused by strict validators
    assert '"format"' not in text  # formats are optional in JSON Schema; patterns say it for every validator


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_valid_events_are_accepted_by_both(name: str) -> None:
    payload, _ = EXAMPLES[name]
    assert VALIDATOR.is_valid(payload)
    assert accepted_by_parser(payload)


def bounded_json_value(depth: int) -> dict[str, Any]:
    """A non-recursive part of the schema's `JsonValue`: its leaves, in arrays and objects up to `depth` deep."""
    leaves = [branch for branch in SCHEMA["$defs"]["JsonValue"]["anyOf"] if branch["type"] not in ("array", "object")]
    value: dict[str, Any] = {"anyOf": leaves}
    for _ in range(depth):
        nested = [
            {"type": "array", "items": value, "maxItems": 3},
            {"type": "object", "additionalProperties": value, "maxProperties": 3},
        ]
        value = {"anyOf": [*leaves, *nested]}
    return value


def generation_schema(name: str) -> dict[str, Any]:
    """One event type's schema with free-form values bounded: each of its instances is an instance of the contract."""
    defs = copy.deepcopy(SCHEMA["$defs"])
    defs["JsonValue"] = bounded_json_value(2)
    return {"$schema": SCHEMA["$schema"], "$defs": defs, "$ref": f"#/$defs/{name}"}


EVENT_NAMES = sorted(name for name in SCHEMA["$defs"] if name != "JsonValue")
#: Schema-valid events of every type, generated from the schema.
schema_instances = st.one_of([from_schema(generation_schema(name)) for name in EVENT_NAMES])


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda event: {**event, field: value}


def _in_free_form(value: Any, *, as_key: bool = False) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def mutate(event: dict[str, Any]) -> dict[str, Any]:
        inner = {value: 1} if as_key else {"v": value}
        return {**event, "indicator_values": inner} if "indicator_values" in event else {**event, "params": inner}

    return mutate


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


MUTATIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "no event_id": lambda event: {k: v for k, v in event.items() if k != "event_id"},
    "event_id not a uuid": _set("event_id", "123"),
    "extra field": _set("surprise", 1),
    "epoch occurred_at": _set("occurred_at", 1_700_000_000),
    "occurred_at without zone": _set("occurred_at", "2026-01-01T12:00:00"),
    "occurred_at at the calendar's edge": _set("occurred_at", "9999-12-31T23:59:59-05:00"),
    "occurred_at before 2000": _set("occurred_at", "1999-12-31T23:59:59Z"),
    "occurred_at on a day that does not exist": _set("occurred_at", "2026-02-30T00:00:00Z"),
    "schema version 2": _set("schema_version", 2),
    "unknown type": _set("type", "bot.exploded"),
}
#: Rules with no JSON Schema keyword: the parser refuses, the schema states them in its description.
#: (JSON Schema numbers are mathematical: 2**70 written as an integer and as 1.1805916207174113e21 are
#: the same number to a validator, while the parser refuses the integer and keeps the float.)
STATED_ONLY: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "nested too deep": lambda event: {**event, "indicator_values": _nested(40)},
    "integer beyond 64 bits in a free-form value": _in_free_form(2**70),
    "lone surrogate in a free-form value": _in_free_form("x\ud83d"),
    "lone surrogate in a free-form key": _in_free_form("k\ud83d", as_key=True),
    "lone surrogate in a field": lambda event: {**event, "source": "bot\ud83d"},
}
TYPED: dict[str, dict[str, Any]] = {
    "signal.created": {"entry_price": "123.5", "bot_id": "1"},
    "signal.closed": {"pnl_percent": "1.5", "exit_price": True},
    "backtest.finished": {"total_trades": 1.5, "preset_id": True},
    "bot.toggled": {"bot_id": "3", "active": 1},
}


@settings(max_examples=200)
@given(st.sampled_from(list(EXAMPLES)), st.sampled_from(list(MUTATIONS)))
def test_mutated_events_are_refused_by_both(name: str, mutation: str) -> None:
    payload = MUTATIONS[mutation](copy.deepcopy(EXAMPLES[name][0]))
    assert not VALIDATOR.is_valid(payload), mutation
    assert not accepted_by_parser(payload), mutation


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema_instances, st.sampled_from([None, *MUTATIONS]))
def test_schema_generated_events_get_the_schemas_verdict_from_the_parser(instance: Any, mutation: str | None) -> None:
    payload = instance if mutation is None else MUTATIONS[mutation](instance)
    assert accepted_by_parser(payload) == VALIDATOR.is_valid(payload), (mutation, payload)


@pytest.mark.parametrize(("name", "field"), [(name, field) for name, fields in TYPED.items() for field in fields])
def test_a_value_of_the_wrong_json_type_is_refused_by_both(name: str, field: str) -> None:
    payload = {**EXAMPLES[name][0], field: TYPED[name][field]}
    assert not VALIDATOR.is_valid(payload)
    assert not accepted_by_parser(payload)


STATED = [
    ("nested too deep", "nested more than 32", "nested at most 32"),
    ("integer beyond 64 bits in a free-form value", "beyond 64 bits", "integers of 64 bits"),
    ("lone surrogate in a free-form value", "surrogate", "no lone surrogates"),
    ("lone surrogate in a free-form key", "surrogate", "no lone surrogates"),
    ("lone surrogate in a field", "surrogate", "no lone surrogates"),
]


@pytest.mark.parametrize(("rule", "refusal", "statement"), STATED)
def test_rules_the_schema_states_in_words_are_refused_by_the_parser(rule: str, refusal: str, statement: str) -> None:
    payload = STATED_ONLY[rule](EXAMPLES["signal.created"][0])
    with pytest.raises(EventValidationError, match=refusal):
        parse_event(payload)
    assert statement in SCHEMA["$defs"]["JsonValue"]["description"]


@settings(max_examples=300)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(), lambda inner: st.lists(inner)
                    | st.dictionaries(st.text(), inner), max_leaves=20))  # fmt: skip
def test_nothing_but_a_validation_error_escapes_the_parser(value: Any) -> None:
    for payload in (value, {"type": "settings.set", "event_id": str(uuid.uuid4()), "key": "k", "value": value}):
        with contextlib.suppress(EventValidationError):
            parse_event(payload)


def test_a_python_model_still_gets_its_event_id_and_a_publisher_dict_too() -> None:
    payload = {k: v for k, v in EXAMPLES["bot.toggled"][0].items() if k != "event_id"}
    assert parse_event(payload, wire=False).event_id is not None
    with pytest.raises(EventValidationError, match="event_id: required on the wire"):
        parse_event(payload)


@pytest.mark.parametrize(("field", "value"), [("exit_reason", "  "), ("exit_reason", "x" + " " * 60)])
def test_whitespace_counts_as_the_schema_counts_it(field: str, value: str) -> None:
    payload = {**EXAMPLES["signal.closed"][0], field: value}
    assert VALIDATOR.is_valid(payload) == accepted_by_parser(payload)
