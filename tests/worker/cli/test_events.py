"""`komas events schema`: the contract a producer in another language codes against."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs  # ships with schemathesis (a dev dependency); a real, independent validator
import pytest

from events import parse_event
from events.catalogue import EVENT_TYPES
from tests.worker.cli.conftest import Cli

SAMPLES = Path(__file__).resolve().parents[3] / "data" / "samples"


@pytest.fixture
def schema(cli: Cli) -> dict[str, Any]:
    return cli.json("events", "schema")


def catalogue_types() -> set[str]:
    return {str(model.model_fields["type"].default) for model in EVENT_TYPES}


def test_it_is_a_valid_2020_12_json_schema(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema_rs.meta.validate(schema)  # raises with the reason when it is not a valid schema


def test_it_covers_exactly_the_catalogue(schema: dict[str, Any]) -> None:
    branches = [schema["$defs"][ref["$ref"].removeprefix("#/$defs/")] for ref in schema["oneOf"]]
    assert {branch["properties"]["type"]["const"] for branch in branches} == catalogue_types()
    assert "discriminator" not in json.dumps(schema)  # OpenAPI's keyword: strict standard validators refuse it
    assert len(branches) == len(EVENT_TYPES) == 16


def test_every_event_requires_its_type(schema: dict[str, Any]) -> None:
    """Without `type` the worker cannot tell which event it is, so the schema must refuse it too."""
    for ref in schema["oneOf"]:
        name = ref["$ref"].removeprefix("#/$defs/")
        assert "type" in schema["$defs"][name]["required"], name
    validator = jsonschema_rs.validator_for(schema)
    assert not validator.is_valid({"key": "optimization.workers"})  # a settings.delete without its type


def test_the_sample_events_and_a_model_dump_validate(schema: dict[str, Any]) -> None:
    validator = jsonschema_rs.validator_for(schema)
    lines = [line for line in (SAMPLES / "trading.jsonl").read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        payload = json.loads(line)
        validator.validate(payload)
        assert parse_event(payload).type == payload["type"]  # what the schema accepts the worker accepts


def test_the_schema_refuses_what_the_worker_refuses(schema: dict[str, Any]) -> None:
    validator = jsonschema_rs.validator_for(schema)
    good = {"type": "bot.toggled", "event_id": "0b6f4bd4-4bd5-4a5c-9a3e-4b4f2b1f7f4e", "bot_id": 1, "active": True}
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "type": "bot.exploded"})
    assert not validator.is_valid({**good, "bot_id": "one"})
    assert not validator.is_valid({**good, "surprise": 1})  # extra fields are refused (extra="forbid")
    assert not validator.is_valid({key: value for key, value in good.items() if key != "event_id"})
    assert not validator.is_valid({**good, "bot_id": True})  # strict: a bool is not a number
    assert not validator.is_valid({**good, "occurred_at": 1_700_000_000})
