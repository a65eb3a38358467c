"""How the worker writes what Redis keeps of a finished job.

arq stores a finished job's result together with its arguments for `keep_result` (an hour): for an
`apply_events` job that is the whole batch again, walked for NaN, encoded and held in Redis memory
for an hour, although the events are already in the database and the result lists their ids.
The record keeps everything else arq writes; its arguments become an empty list.
"""

from __future__ import annotations

from typing import Any

from events.wire import dumps

#: Keys only a result (not a queued job) has; arq's serialize_result writes both.
_RESULT_KEYS = ("r", "ft")


def is_result(value: Any) -> bool:
    """Whether `value` is arq's record of a finished job (the worker also enqueues jobs with the same serializer)."""
    return type(value) is dict and all(key in value for key in _RESULT_KEYS)


def worker_dumps(value: Any) -> bytes:
    """`events.wire.dumps`, except that a finished job's record is written without its arguments."""
    if is_result(value) and value.get("a"):
        value = {**value, "a": []}
    return dumps(value)
