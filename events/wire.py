"""The wire format: how a batch of events becomes an arq job in Redis.

Written down here (and in the README) so a producer in any language can publish:
one JSON document under `arq:job:<job_id>`, the job id added to the sorted set named by the queue.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any

import orjson

from events.envelope import BaseEvent, reject_non_finite
from events.errors import EventValidationError

DEFAULT_QUEUE = "komas:events"
JOB_FUNCTION = "apply_events"
JOB_KEY_PREFIX = "arq:job:"
#: Jobs wait in Redis this long for a worker (arq's own default is one day; an outage may last longer).
DEFAULT_JOB_TTL_S = 30 * 24 * 3600
DEFAULT_MAX_EVENT_BYTES = 256 * 1024
DEFAULT_MAX_BATCH = 1000


def dumps(value: Any) -> bytes:
    """Strict JSON (no NaN), compact, UTF-8: the only serializer on both sides of the queue.

    orjson when the value holds no NaN or infinity (it would write them as null); the standard
    library otherwise, and for what orjson cannot encode, so refusals stay as they were.
    """
    try:
        reject_non_finite(value)
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    except (EventValidationError, TypeError):  # NaN somewhere (refused below), or an integer orjson cannot write
        return json.dumps(value, separators=(",", ":"), allow_nan=False, default=str).encode()


#: A run of 19 digits or more: maybe an integer beyond 64 bits, which orjson would turn into a float.
_LONG_NUMBER = re.compile(rb"[0-9]{19}")
_LONG_NUMBER_TEXT = re.compile(r"[0-9]{19}")


def loads(data: bytes | str) -> Any:
    """Inverse of `dumps`: orjson for speed, the standard library for what orjson refuses or would bend.

    orjson rejects NaN literals and lone surrogates, and reads integers beyond 64 bits as floats
    (2**70 would be stored as 1.1805916207174113e21); the standard parser keeps them as they are, so
    such an event reaches validation and is refused on its own, not with its whole job. Nesting
    deeper than the parsers recurse is a `ValueError`, like any other text that is not JSON.
    """
    long_number = _LONG_NUMBER_TEXT if isinstance(data, str) else _LONG_NUMBER
    try:
        if not long_number.search(data):  # type: ignore[arg-type]  # the pattern matches the data's kind
            return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested deeper than the parser allows") from None


def encoded_size(value: Any) -> int:
    """Bytes of `value` as compact JSON, cheaply (the worker measures every event it receives).

    The bytes `dumps` writes for a finite value (both orjson), without its NaN walk: a NaN is
    refused by validation right after, with a message naming the field.
    """
    try:
        return len(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))
    except TypeError:
        return len(dumps(value))


@dataclass(frozen=True)
class Limits:
    """Upper bounds a publisher enforces before anything reaches Redis."""

    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_batch: int = DEFAULT_MAX_BATCH
    job_ttl_s: int = DEFAULT_JOB_TTL_S

    @classmethod
    def from_env(cls) -> Limits:
        """The limits the worker enforces too: `KOMAS_MAX_EVENT_BYTES`, `KOMAS_MAX_BATCH`, `KOMAS_JOB_TTL_S`."""
        return cls(
            max_event_bytes=int(os.environ.get("KOMAS_MAX_EVENT_BYTES") or DEFAULT_MAX_EVENT_BYTES),
            max_batch=int(os.environ.get("KOMAS_MAX_BATCH") or DEFAULT_MAX_BATCH),
            job_ttl_s=int(os.environ.get("KOMAS_JOB_TTL_S") or DEFAULT_JOB_TTL_S),
        )


@dataclass(frozen=True)
class EncodedJob:
    """One job ready to write: its id, JSON body, arq score (enqueue time, ms) and event count."""

    job_id: str
    body: bytes
    score: int
    size: int


def encode_event(event: BaseEvent, limits: Limits) -> bytes:
    """Serialize one event and enforce the size limit."""
    try:
        raw = event.to_json()
    except EventValidationError as exc:
        raise EventValidationError(f"event {event.event_id}: {exc}") from None
    except ValueError as exc:  # pydantic cannot write a value held in a free-form field
        raise EventValidationError(f"event {event.event_id}: not valid JSON ({exc})") from None
    if len(raw) > limits.max_event_bytes:
        raise EventValidationError(
            f"event {event.event_id}: {len(raw)} bytes exceeds the limit of "
            f"{limits.max_event_bytes} bytes (KOMAS_MAX_EVENT_BYTES)"
        )
    return raw


def encode_job(
    encoded_events: Sequence[bytes], *, enqueue_time_ms: int | None = None, job_id: str | None = None
) -> EncodedJob:
    """Wrap encoded events as an arq job: `{"t":null,"f":"apply_events","a":[[...]],"k":{},"et":ms}`."""
    et = int(time.time() * 1000) if enqueue_time_ms is None else enqueue_time_ms
    body = (
        b'{"t":null,"f":"'
        + JOB_FUNCTION.encode()
        + b'","a":[['
        + b",".join(encoded_events)
        + b']],"k":{},"et":'
        + str(et).encode()
        + b"}"
    )
    return EncodedJob(job_id=job_id or uuid.uuid4().hex, body=body, score=et, size=len(encoded_events))


def ordered_job_ids() -> Iterator[str]:
    """Job ids that sort in the order they are made, within this process, and are unique.

    Jobs queued in the same millisecond have the same score, and Redis orders equal scores by
    member: with these ids the jobs of a producer start in the order it published them (also
    across `publish_many` calls). A process prefix, made again after a fork (process pools), and
    a random tail keep ids unique between processes.
    """
    while True:
        yield f"{_process_prefix()}{next(_JOB_COUNTER):016x}{uuid.uuid4().hex[:8]}"


_JOB_COUNTER = count()
_PREFIX: dict[int, str] = {}


def _process_prefix() -> str:
    pid = os.getpid()
    prefix = _PREFIX.get(pid)
    if prefix is None:
        _PREFIX.clear()
        prefix = _PREFIX[pid] = uuid.uuid4().hex[:16]
    return prefix


def chunked(items: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    """Split encoded events into jobs of at most `size` events."""
    chunk: list[bytes] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def event_id_of(raw: Any) -> str | None:
    """The event id of a raw payload when it is a well-formed UUID (anything else is the producer's text, not an id)."""
    value = raw.get("event_id") if isinstance(raw, dict) else None
    if not isinstance(value, str) or len(value) > 45:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
