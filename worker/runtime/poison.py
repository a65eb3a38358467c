"""The gate every job body passes before arq sees it: the documented shape, or a dead letter.

Whatever bytes a producer writes under `arq:job:<id>`, arq only ever sees a well-formed job from
this deserializer. Producers may send exactly one shape, the README's wire format:
`{"t": null, "f": "apply_events", "a": [[<event>, ...]], "k": {}, "et": <ms>}`; the worker's own
jobs (operator commands, cron) are arq jobs written by arq. Anything else (bytes that are not JSON,
another shape, a wrong type in `t` or `et`, extra arguments, an unknown function) is rewritten
into a call of `dead_letter_job` with a `PoisonJob`, which stores the raw bytes and the reason.

A `PoisonJob` cannot be made from JSON, so no producer can call `dead_letter_job` itself, and no
producer field can reach an internal parameter: `apply_events` takes the batch and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from events.wire import JOB_FUNCTION, loads

DEAD_LETTER_JOB = "dead_letter_job"
#: The keys arq writes in a job body (arq.jobs.serialize_job), and the only ones accepted.
JOB_KEYS = frozenset({"t", "f", "a", "k", "et"})
#: `et` (enqueue time, ms since the epoch) must be a date Python can represent (arq makes one of it).
MAX_ENQUEUE_TIME_MS = 253_402_214_400_000  # 9999-12-31T00:00:00Z
#: arq's try count in a body (`t`); ours are null. More than this is not a try count.
MAX_JOB_TRY = 1_000_000


@dataclass(frozen=True)
class PoisonJob:
    """A job body the worker does not run as sent: its raw bytes and why (stored as one dead letter)."""

    raw: bytes
    reason: str


class EventBatch(list[Any]):
    """A job's list of raw events, with a short repr.

    arq logs every job's arguments through `repr` before cutting the text to 80 characters; for a
    batch of a thousand events that repr cost more than applying a tenth of them.
    """

    def __repr__(self) -> str:
        return f"<{len(self)} events>"


def _poison(raw: bytes, reason: str) -> dict[str, Any]:
    return {"f": DEAD_LETTER_JOB, "a": [PoisonJob(raw, reason)], "k": {}, "t": None, "et": int(time.time() * 1000)}


def _is_int(value: Any) -> bool:
    return type(value) is int  # not bool, not a float that happens to be whole


def shape_error(job: Any, known: frozenset[str]) -> str | None:
    """Why `job` (decoded JSON) is not a job this worker runs, or None when it is."""
    if not isinstance(job, dict):
        return f"job is not an arq job object (keys f, a, k, t, et) but a JSON {type(job).__name__}"
    if job.keys() != JOB_KEYS:
        return f"job is not an arq job object: keys must be exactly f, a, k, t, et (got {sorted(map(str, job))[:8]})"
    function, args, kwargs, job_try, enqueued = job["f"], job["a"], job["k"], job["t"], job["et"]
    if not isinstance(function, str) or function not in known:
        return f"unknown job function {str(function)[:100]!r}"
    if job_try is not None and not (_is_int(job_try) and 0 <= job_try <= MAX_JOB_TRY):
        return f'"t" must be null (or arq\'s try count), got {str(job_try)[:40]}'
    if not (_is_int(enqueued) and 0 <= enqueued <= MAX_ENQUEUE_TIME_MS):
        return f'"et" must be the enqueue time in whole milliseconds since the epoch, got {str(enqueued)[:40]}'
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        return '"a" must be a list and "k" an object'
    if function == JOB_FUNCTION:
        if len(args) != 1 or not isinstance(args[0], list) or kwargs:
            return (
                f'{JOB_FUNCTION} takes exactly one list of events: "a" must be [[<event>, ...]] and "k" must be {{}} '
                f"(got {len(args)} argument(s) and {len(kwargs)} keyword(s))"
            )
    elif not all(isinstance(key, str) for key in kwargs):
        return '"k" must have string keys'
    return None


def tolerant_deserializer(known_functions: Iterable[str]) -> Callable[[bytes], dict[str, Any]]:
    """Build the worker's job deserializer for these function names (see the module)."""
    known = frozenset(known_functions) - {DEAD_LETTER_JOB}

    def deserialize(raw: bytes) -> dict[str, Any]:
        try:
            job = loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return _poison(raw, f"job is not valid JSON: {str(exc)[:200]}")
        error = shape_error(job, known)
        if error is not None:
            return _poison(raw, error)
        if job["f"] == JOB_FUNCTION:
            job["a"] = [EventBatch(job["a"][0])]
        return job  # type: ignore[no-any-return]

    return deserialize
