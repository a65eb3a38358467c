"""Shared checks for the managers' keyword-argument updates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def checked_fields(fields: Mapping[str, Any], allowed: Iterable[str], what: str) -> dict[str, Any]:
    """Return `fields` if every name is allowed, else raise a `ValueError` naming the strangers."""
    allowed_set = set(allowed)
    unknown = sorted(set(fields) - allowed_set)
    if unknown:
        raise ValueError(f"{what}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed_set))}")
    return dict(fields)
