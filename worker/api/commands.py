"""Writes: publish one command event as one arq job, wait for the worker's answer, read it.

The worker is the only writer. A write here is the same job any producer sends (JSON, queue
`config.queue`), and the job's result says what became of the event: its handler's answer,
or a refusal (404 not found, 409 duplicate, 422 invalid) that we pass on. When the worker does
not answer within `api_wait_s` the caller gets 202 and the event applies when a worker runs.
"""

from __future__ import annotations

import json
from typing import Any

from arq.jobs import Job

from events.commands import Command
from events.wire import JOB_FUNCTION
from worker.api.errors import ApiError, WriteQueued
from worker.api.resources import Resources
from worker.api.schemas import Queued
from worker.outcomes import event_outcome

#: How often we look for the job's result while waiting (Redis GETs; cheap).
POLL_DELAY_S = 0.02


def check_encodable(payload: Any) -> None:
    """Refuse text that cannot be stored as UTF-8 (a lone surrogate from a JSON `\\ud800` escape)."""
    try:
        json.dumps(payload, ensure_ascii=False, default=str).encode()
    except UnicodeEncodeError:
        raise ApiError(422, "text must be valid Unicode: a lone surrogate (\\ud800-\\udfff) cannot be stored") from None


async def execute(resources: Resources, command: Command) -> dict[str, Any]:
    """Queue `command`, wait for the worker; return its handler's answer or raise `ApiError`/`WriteQueued`."""
    payload = command.to_wire()
    check_encodable(payload)
    config = resources.config
    job: Job | None = await resources.redis.enqueue_job(
        JOB_FUNCTION, [payload], _queue_name=config.queue, _expires=config.job_ttl_s
    )
    assert job is not None  # a fresh random job id never collides
    queued = Queued(event_id=str(command.event_id), job_id=job.job_id)
    try:
        result = await job.result(timeout=config.api_wait_s, poll_delay=POLL_DELAY_S)
    except TimeoutError:
        raise WriteQueued(queued) from None
    return outcome(result, queued)


def outcome(result: Any, queued: Queued) -> dict[str, Any]:
    """What became of our event in the job's result (read by `worker.outcomes`, as `komas dlq replay` reads it)."""
    found = event_outcome(result, queued.event_id)
    if found is None:
        raise ApiError(502, f"the worker answered job {queued.job_id} with something unexpected: {result!r}"[:500])
    if found.status == "rejected":
        raise ApiError(found.code or 422, found.reason)
    if found.status == "dead_lettered":
        raise ApiError(422, found.reason)
    if found.status in ("applied", "duplicate"):
        return found.answer
    # Re-enqueued (database unavailable) or parked: it will apply later, as with a worker that is down.
    raise WriteQueued(queued)
