"""`POST /api/events`: publish one event or a list of raw events, as any producer would.

Each is validated with the catalogue first (422 names the event and field; 413 for one over
`KOMAS_MAX_EVENT_BYTES`), then they go to the queue in as few jobs as the batch limit allows. The
answer is 202 with the event ids: the worker applies them when it gets to them, each exactly once.
Exactly what the worker accepts (the schema of `komas events schema`): each event carries its own
`event_id`, so a retry of the request publishes the same events.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from events.catalogue import BaseEvent, parse_event
from events.errors import PublishError
from events.publisher import Publisher
from events.wire import Limits
from worker.api.auth import WriteAuth
from worker.api.commands import check_encodable, check_size
from worker.api.deps import ResourcesDep
from worker.api.errors import ApiError, WriteNotConfirmed
from worker.api.idempotency import IdempotentRoute, WriteRecord, WriteRequestDep
from worker.api.routes._responses import WRITE
from worker.api.schemas import Queued

router = APIRouter(prefix="/api", tags=["events"], dependencies=[WriteAuth], route_class=IdempotentRoute)

RawEvents = Annotated[
    dict[str, Any] | list[dict[str, Any]],
    Body(
        description="One event, or a list of events, as in the README's event table (`type` selects the schema).",
        examples=[{"type": "bot.toggled", "bot_id": 1, "active": True, "source": "ops"}],
    ),
]


def validate_all(raw: list[dict[str, Any]], max_event_bytes: int) -> list[BaseEvent]:
    """Every event or none: 413 for one over the size limit, 422 listing each bad one by its index."""
    events: list[BaseEvent] = []
    problems: list[str] = []
    for index, payload in enumerate(raw):
        check_size(payload, max_event_bytes, f"events[{index}]")
        try:
            check_encodable(payload)
            events.append(parse_event(payload))
        except ApiError as exc:
            problems.append(f"events[{index}]: {exc.detail}")
        except (ValueError, OverflowError, RecursionError) as exc:  # EventValidationError is a ValueError
            lines = getattr(exc, "errors", None) or [f"{type(exc).__name__}: {exc}"]
            problems += [f"events[{index}].{line}" for line in lines]
    if problems:
        raise ApiError(422, problems)
    return events


@router.post("/events", response_model=Queued, status_code=202, responses=WRITE)
async def publish_events(body: RawEvents, resources: ResourcesDep, write: WriteRequestDep, request: Request) -> Queued:
    raw = body if isinstance(body, list) else [body]
    if not raw:
        raise ApiError(422, "no events: send one event or a non-empty list")
    config = resources.config
    events = validate_all(raw, config.max_event_bytes)
    event_ids = [str(event.event_id) for event in events]
    await WriteRecord(resources, write, request).claim()
    limits = Limits(max_event_bytes=config.max_event_bytes, max_batch=config.max_batch, job_ttl_s=config.job_ttl_s)
    publisher = Publisher(resources.redis, queue=config.queue, limits=limits, url="redis")
    try:
        job_ids = await publisher.publish_many(events)
    except PublishError as exc:  # Redis may have taken them before failing: the same request again is safe
        raise WriteNotConfirmed(write, event_ids, may_apply=True, reason=exc.__cause__ or exc, queued=False) from None
    return Queued(event_ids=event_ids, job_ids=job_ids)
