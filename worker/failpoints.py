"""Failpoints: let the fault tests kill the worker at exact places (off unless `KOMAS_FAILPOINTS` is set).

`KOMAS_FAILPOINTS="after_commit=0.05,before_commit=0.02"` makes the process exit abruptly (as with
`kill -9`: no cleanup, no finally blocks) with that probability each time the point is passed.
"""

from __future__ import annotations

import os
import random

EXIT_CODE = 86


def _parse(spec: str) -> dict[str, float]:
    points: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, probability = item.partition("=")
        points[name] = float(probability or 1.0)
    return points


_POINTS = _parse(os.environ.get("KOMAS_FAILPOINTS", ""))


def failpoint(name: str) -> None:
    """Die here with the configured probability."""
    probability = _POINTS.get(name)
    if probability is not None and random.random() < probability:
        os._exit(EXIT_CODE)
