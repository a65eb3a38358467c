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
    """Read what became of our event in the job's result (see `worker.jobs.BatchReport.as_result`)."""
    if not isinstance(result, dict):
        raise ApiError(502, f"the worker answered job {queued.job_id} with something unexpected: {result!r}"[:500])
    event_id = queued.event_id
    for rejection in result.get("rejections", []):
        if rejection.get("event_id") == event_id:
            raise ApiError(int(rejection.get("status", 422)), rejection.get("reason", "refused"))
    for letter in result.get("dead_letters", []):
        if letter.get("event_id") == event_id:
            raise ApiError(422, letter.get("reason", "refused by the worker"))
    answers: dict[str, Any] = result.get("results", {})
    if event_id in answers:
        answer: dict[str, Any] = answers[event_id]
        return answer
    if event_id in result.get("duplicate_ids", []) or event_id in result.get("applied_ids", []):
        return {}
    # Re-enqueued (database unavailable) or parked: it will apply later, as with a worker that is down.
    raise WriteQueued(queued)
