"""How the API writes values it did not make itself, so that no answer can fail to encode.

What is stored (by older versions, by hand, or by a producer the contract once let through) and what
a caller sent (echoed in a 422) may hold what JSON or UTF-8 cannot carry. The rules, in the README's
"REST API" section:

- a lone UTF-16 surrogate (`"\\ud83d"`) in a string or a key becomes U+FFFD;
- NaN and infinity become null;
- a container nested deeper than `MAX_DEPTH` levels is replaced by `{"$truncated": "<why>"}`, and so is
  stored text that cannot be read as JSON (nested too deep for any parser here, or not JSON at all).
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
from fastapi.responses import JSONResponse

#: Deeper containers are cut (pydantic stops serializing at about 255 levels, JSON parsers at 1,000).
MAX_DEPTH = 64
TRUNCATED_KEY = "$truncated"


def truncated(reason: str) -> dict[str, str]:
    """What stands in the place of a value too deep to show."""
    return {TRUNCATED_KEY: reason}


def _text(value: str) -> str:
    """`value` with each lone surrogate replaced by U+FFFD (a valid pair is one code point in Python)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in value)
    return value


def encodable(value: Any, depth: int = 0) -> Any:
    """`value` made JSON- and UTF-8-safe by the rules above (a new value; the input is not changed)."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict | list | tuple):
        if depth >= MAX_DEPTH:
            return truncated(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            return {_text(str(key)): encodable(item, depth + 1) for key, item in value.items()}
        return [encodable(item, depth + 1) for item in value]
    if value is None or isinstance(value, bool | int):
        return value
    return _text(str(value))


def load_stored_json(text: str | bytes) -> Any:
    """The JSON column reader of the API: never raises on what is stored.

    orjson first (no Python recursion; refuses more than 1,024 levels, lone surrogates and integers
    beyond 64 bits), then the standard parser for the last two; text too deep for both is `truncated`.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            return truncated("stored JSON nested deeper than 1024 levels")
    try:
        return json.loads(text)
    except RecursionError:
        return truncated("stored JSON nested too deep to read")
    except ValueError as exc:
        return truncated(f"stored text is not JSON ({exc})")


class SafeJSONResponse(JSONResponse):
    """JSON answers that cannot fail to encode: what the strict encoder refuses is written by `encodable`."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except (ValueError, UnicodeEncodeError, RecursionError, TypeError):
            return super().render(encodable(content))
