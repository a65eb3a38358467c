"""The catalogue as standard JSON Schema (draft 2020-12): the contract producers in any language validate against.

pydantic writes OpenAPI's `discriminator` keyword for the union over `type`, which standard
validators (Ajv in strict mode) refuse; each branch already fixes `type` with a `const`, so `oneOf`
alone says the same. What pydantic cannot state from the types is added here: `event_id`
required, integers within 64 bits, free-form values as JSON values without lone surrogates, and
the rules that have no portable keyword (nesting depth, bytes per event, no lone UTF-16 surrogate
in any text: a `pattern` over surrogates is not a regex every validator's engine compiles) in the
descriptions.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from events.catalogue import Event
from events.envelope import INT64_MAX, INT64_MIN, MAX_DEPTH
from events.wire import DEFAULT_MAX_EVENT_BYTES

DIALECT = "https://json-schema.org/draft/2020-12/schema"
JSON_VALUE = "JsonValue"


def _json_value() -> dict[str, Any]:
    """A free-form JSON value as the contract allows it (recursive; the depth limit is in the description)."""
    ref = {"$ref": f"#/$defs/{JSON_VALUE}"}
    return {
        "description": f"Any JSON value: no NaN or infinity, integers of 64 bits, no lone surrogates, "
        f"nested at most {MAX_DEPTH} levels deep (counted from the event).",
        "anyOf": [
            {"type": "null"},
            {"type": "boolean"},
            {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
            {"type": "number"},
            {"type": "string"},
            {"type": "array", "items": ref},
            {"type": "object", "additionalProperties": ref},
        ],
    }


def _tighten(node: Any) -> Any:
    """Walk pydantic's schema: drop `discriminator`, bound integers, make free-form values `JsonValue`s."""
    if isinstance(node, list):
        return [_tighten(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _tighten(value) for key, value in node.items() if key != "discriminator"}
    if node.get("type") == "integer":
        node.setdefault("minimum", INT64_MIN)
        node.setdefault("maximum", INT64_MAX)
    if node.get("type") == "object" and node.get("additionalProperties") is True:
        node["additionalProperties"] = {"$ref": f"#/$defs/{JSON_VALUE}"}
    if node == {} or (set(node) <= {"title", "description", "default", "examples"} and node):
        pass
    return node


def catalogue_schema() -> dict[str, Any]:
    """The whole catalogue: one `oneOf` over the event types, each requiring `type` and `event_id`."""
    document: dict[str, Any] = _tighten(TypeAdapter(Event).json_schema())
    definitions: dict[str, Any] = document["$defs"]
    for branch in document["oneOf"]:
        definition = definitions[branch["$ref"].removeprefix("#/$defs/")]
        required = [name for name in definition.get("required", []) if name not in ("type", "event_id")]
        definition["required"] = ["type", "event_id", *required]
        for name, field in definition["properties"].items():
            if not field or set(field) <= {"title", "description", "default"}:  # `Any`: a setting's value
                definition["properties"][name] = {**field, "$ref": f"#/$defs/{JSON_VALUE}"}
    definitions[JSON_VALUE] = _json_value()
    document["$schema"] = DIALECT
    document["title"] = "Komas event"
    document["description"] = (
        f"One event as it travels on the wire (a job's list of events holds objects of this schema). "
        f"At most {DEFAULT_MAX_EVENT_BYTES} bytes of compact JSON per event unless KOMAS_MAX_EVENT_BYTES says "
        f"otherwise; free-form objects nested at most {MAX_DEPTH} levels deep; no text (value or key) may hold "
        f"a lone UTF-16 surrogate (\\ud800-\\udfff: valid JSON, not text)."
    )
    return document
