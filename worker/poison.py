"""A job deserializer that never fails: poison jobs become dead letters instead of log lines.

arq fails a job it cannot deserialize, or whose function it does not know, before any of our
code runs, and the payload would be gone. This deserializer rewrites such a job into a call of
`dead_letter_job(raw, reason)`, which stores the raw bytes and the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from events.wire import loads

DEAD_LETTER_JOB = "dead_letter_job"


class EventBatch(list[Any]):
    """A job's list of raw events, with a short repr.

    arq logs every job's arguments through `repr` before cutting the text to 80 characters; for a
    batch of a thousand events that repr cost more than applying a tenth of them.
    """

    def __repr__(self) -> str:
        return f"<{len(self)} events>"


def _poison(raw: bytes, reason: str) -> dict[str, Any]:
    text = raw.decode("utf-8", errors="replace")
    return {"f": DEAD_LETTER_JOB, "a": [text, reason], "k": {}, "t": None, "et": int(time.time() * 1000)}


def tolerant_deserializer(known_functions: Iterable[str]) -> Callable[[bytes], dict[str, Any]]:
    """Build the worker's job deserializer for these function names."""
    known = frozenset(known_functions) | {DEAD_LETTER_JOB}

    def deserialize(raw: bytes) -> dict[str, Any]:
        try:
            job = loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return _poison(raw, f"job is not valid JSON: {exc}")
        if not isinstance(job, dict) or not {"f", "a", "k", "t", "et"} <= job.keys():
            return _poison(raw, "job is not an arq job object (keys f, a, k, t, et)")
        if job["f"] not in known:
            return _poison(raw, f"unknown job function {job['f']!r}")
        args = job["a"]
        if isinstance(args, list) and args and isinstance(args[0], list):
            job["a"] = [EventBatch(args[0]), *args[1:]]
        return job

    return deserialize
