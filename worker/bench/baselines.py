"""The two baselines the benchmark measures our worker against, and how their jobs are queued.

*Naive*: the design we did not build. One arq job per event, one ORM transaction per event through
the handlers and managers (the seed's API), the event id recorded in `processed_events` in that same
transaction, so its effect is the same as ours. *No-op*: an arq job that does nothing: the ceiling
arq and Redis put on jobs per second, whatever the job does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from events import parse_event
from events.catalogue import BaseEvent
from events.wire import DEFAULT_JOB_TTL_S, JOB_KEY_PREFIX, dumps
from worker.apply.handlers import handle
from worker.store.db import transaction
from worker.store.models import ProcessedEvent

NAIVE_FUNCTION = "naive_apply_event"
NOOP_FUNCTION = "noop"

#: perf_counter of the first no-op job: the start of arq's drain in the no-op run.
first_noop_at: float | None = None


async def naive_apply_event(ctx: dict[str, Any], raw: Any) -> str:
    """One event, one transaction: skip a known id, else apply it through the managers and record its id."""
    event = parse_event(raw)
    event_id = str(event.event_id)
    async with transaction() as session:
        if await session.get(ProcessedEvent, event_id) is not None:
            return "duplicate"
        await handle(session, event)
        session.add(ProcessedEvent(event_id=event_id, event_type=event.type))
    return "applied"


async def noop(ctx: dict[str, Any], *args: Any) -> None:
    """Nothing at all: what is left is arq's own cost per job."""
    global first_noop_at
    if first_noop_at is None:
        first_noop_at = time.perf_counter()


def single_job(function: str, argument: Any, job_id: str) -> tuple[str, bytes, int]:
    """An arq job calling `function(argument)`, in the same JSON wire format as ours."""
    enqueue_ms = int(time.time() * 1000)
    body = dumps({"t": None, "f": function, "a": [argument], "k": {}, "et": enqueue_ms})
    return job_id, body, enqueue_ms


async def enqueue_single_jobs(
    client: aioredis.Redis, queue: str, function: str, arguments: Sequence[Any], job_ids: Sequence[str]
) -> None:
    """Queue one job per argument in one round trip. Ids must sort in publish order (arq breaks score ties by id)."""
    async with client.pipeline(transaction=True) as pipe:
        for argument, job_id in zip(arguments, job_ids, strict=True):
            job_id, body, score = single_job(function, argument, job_id)
            pipe.set(JOB_KEY_PREFIX + job_id, body, px=DEFAULT_JOB_TTL_S * 1000)
            pipe.zadd(queue, {job_id: score})
        await pipe.execute()


def wire(event: BaseEvent) -> dict[str, Any]:
    """The event as a producer sends it."""
    return event.to_wire()
