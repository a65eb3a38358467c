"""Writes: publish one command event as one arq job, wait for the worker's answer, read it.

The worker is the only writer. A write here is the same job any producer sends (JSON, queue
`config.queue`), and the job's result says what became of the event: its handler's answer,
or a refusal (404 not found, 409 duplicate, 422 invalid) that we pass on. When the worker does
not answer within `api_wait_s` the caller gets 202 and the event applies when a worker runs.

Before anything is queued the command is checked as the worker will check it: the catalogue
(`parse_event`, 422) and the event size limit (`KOMAS_MAX_EVENT_BYTES`, 413), so a write the worker
would dead-letter is refused here instead. Its event id comes from the request's `Idempotency-Key`
(`worker.api.idempotency`), and its job id from the event id: a retry finds the job of the first try,
queued, running or finished (arq keeps the result for an hour), instead of queueing a second one.
"""

from __future__ import annotations

import json
from typing import Any

from events.catalogue import parse_event
from events.commands import Command
from events.wire import JOB_FUNCTION, encoded_size
from worker.api.errors import REDIS_ERRORS, ApiError, WriteNotConfirmed, WriteQueued
from worker.api.idempotency import WriteRecord
from worker.api.resources import Resources
from worker.api.schemas import Queued, WriteRequest
from worker.apply.outcomes import event_outcome
from worker.runtime.client import Job, ResultNotFound, job_handle

#: How often we look for the job's result while waiting (Redis GETs; cheap).
POLL_DELAY_S = 0.02
#: A retry whose first job ended and whose result expired meanwhile queues the event again, once or twice.
MAX_ENQUEUES = 3


def check_encodable(payload: Any) -> None:
    """Refuse text that cannot be stored as UTF-8 (a lone surrogate from a JSON `\\ud800` escape)."""
    try:
        json.dumps(payload, ensure_ascii=False, default=str).encode()
    except UnicodeEncodeError:
        raise ApiError(422, "text must be valid Unicode: a lone surrogate (\\ud800-\\udfff) cannot be stored") from None
    except (ValueError, RecursionError) as exc:
        raise ApiError(422, f"not storable as JSON: {exc}") from None


def check_size(payload: Any, max_event_bytes: int, what: str = "the write") -> None:
    """413 for an event the worker would refuse as too large (it measures with the same `encoded_size`)."""
    try:
        size = encoded_size(payload)
    except (TypeError, ValueError, RecursionError) as exc:  # what the worker would dead-letter as not JSON
        raise ApiError(422, f"{what} is not encodable as JSON: {exc}") from None
    if size > max_event_bytes:
        raise ApiError(
            413, f"{what} is an event of {size} bytes, over the limit of {max_event_bytes} (KOMAS_MAX_EVENT_BYTES)"
        )


def job_id_for(queue: str, event_id: str) -> str:
    """The job of a REST write: one per event id, so a retry meets the first try's job.

    The queue is part of it: arq's job and result keys are not per queue, and two deployments may share
    one Redis (and their clients the same keys).
    """
    return f"api:{queue}:{event_id}"


async def execute(resources: Resources, command: Command, write: WriteRequest, record: WriteRecord) -> dict[str, Any]:
    """Queue `command` as the event `write.event_id`, wait for the worker; return its handler's answer.

    Raises `ApiError` (refused), `WriteQueued` (202: not answered yet), `WriteNotConfirmed` (503: Redis
    failed) or `Replay` (a retry whose first answer is kept).
    """
    command = command.model_copy(update={"event_id": write.event_id})
    try:
        payload = command.to_wire()
    except (ValueError, RecursionError) as exc:  # nested too deep for the serializer, or a NaN
        raise ApiError(422, f"not storable as JSON: {exc}") from None
    check_encodable(payload)
    check_size(payload, resources.config.max_event_bytes)
    parse_event(payload)  # what the worker will do first: refused here with 422, never dead-lettered there
    await record.claim()
    event_id = str(write.event_id)
    job_id = job_id_for(resources.config.queue, event_id)
    queued = Queued(event_ids=[event_id], job_ids=[job_id])
    for _ in range(MAX_ENQUEUES):
        job, acknowledged = await _enqueue(resources, payload, job_id, write)
        try:
            result = await job.result(timeout=resources.config.api_wait_s, poll_delay=POLL_DELAY_S)
        except TimeoutError:
            raise WriteQueued(queued) from None
        except ResultNotFound:
            continue  # the first try's job ended and its result expired just now: queue the event again
        except REDIS_ERRORS as exc:  # queued for sure only when Redis acknowledged our job
            raise WriteNotConfirmed(write, [event_id], may_apply=True, reason=exc, queued=acknowledged) from None
        except Exception as exc:  # the job itself failed in the worker (arq re-raises its exception here)
            raise ApiError(502, f"the worker failed job {job_id}: {type(exc).__name__}: {exc}"[:500]) from None
        return outcome(result, event_id, queued)
    raise WriteQueued(queued)


async def _enqueue(resources: Resources, payload: dict[str, Any], job_id: str, write: WriteRequest) -> tuple[Job, bool]:
    """Queue the job, or find the one a first try queued; 503 (may apply) when Redis fails meanwhile.

    Also says whether Redis acknowledged the job as ours. arq answers None both when the job exists and
    when the connection died during its transaction (redis-py turns that into a WatchError, which arq
    takes for "exists"): then the job may or may not be queued, and waiting on it tells which.
    """
    config = resources.config
    try:
        job: Job | None = await resources.redis.enqueue_job(
            JOB_FUNCTION, [payload], _job_id=job_id, _queue_name=config.queue, _expires=config.job_ttl_s
        )
    except REDIS_ERRORS as exc:
        raise WriteNotConfirmed(write, [str(write.event_id)], may_apply=True, reason=exc, queued=False) from None
    if job is None:  # queued, running or finished already (a first try with the same key), or unknown
        return job_handle(resources.redis, job_id, config.queue), False
    return job, True


def outcome(result: Any, event_id: str, queued: Queued) -> dict[str, Any]:
    """What became of our event in the job's result (read by `worker.apply.outcomes`, as `komas dlq replay` reads it).

    A duplicate (a retry of a write the worker applied already) answers `{}`: the route reads the object.
    """
    found = event_outcome(result, event_id)
    if found is None:
        raise ApiError(502, f"the worker answered job {queued.job_ids[0]} with something unexpected: {result!r}"[:500])
    if found.status == "rejected":
        raise ApiError(found.code or 422, found.reason)
    if found.status == "dead_lettered":
        raise ApiError(422, found.reason)
    if found.status in ("applied", "duplicate"):
        return found.answer
    # Re-enqueued (database unavailable) or parked: it will apply later, as with a worker that is down.
    raise WriteQueued(queued)
