"""`POST /api/events`: publish one event or a list of raw events, as any producer would.

Each is validated with the catalogue first (422 names the event and field), then they go to the
queue in as few jobs as the batch limit allows. The answer is 202 with the event ids: the worker
applies them when it gets to them, each exactly once.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from events.catalogue import BaseEvent, parse_event
from events.errors import EventValidationError, PublishError
from events.publisher import Publisher
from events.wire import Limits
from worker.api.auth import WriteAuth
from worker.api.commands import check_encodable
from worker.api.deps import ResourcesDep
from worker.api.errors import ApiError
from worker.api.routes._responses import WRITE
from worker.api.schemas import Published

router = APIRouter(prefix="/api", tags=["events"], dependencies=[WriteAuth])

RawEvents = Annotated[
    dict[str, Any] | list[dict[str, Any]],
    Body(
        description="One event, or a list of events, as in the README's event table (`type` selects the schema).",
        examples=[{"type": "bot.toggled", "bot_id": 1, "active": True, "source": "ops"}],
    ),
]


def validate_all(raw: list[dict[str, Any]]) -> list[BaseEvent]:
    """Every event or none: a 422 lists each bad one by its index in the list."""
    events: list[BaseEvent] = []
    problems: list[str] = []
    for index, payload in enumerate(raw):
        try:
            check_encodable(payload)
            events.append(parse_event(payload))
        except EventValidationError as exc:
            problems += [f"events[{index}].{line}" for line in exc.errors]
        except ApiError as exc:
            problems.append(f"events[{index}]: {exc.detail}")
    if problems:
        raise ApiError(422, problems)
    return events


@router.post("/events", response_model=Published, status_code=202, responses=WRITE)
async def publish_events(body: RawEvents, resources: ResourcesDep) -> Published:
    raw = body if isinstance(body, list) else [body]
    if not raw:
        raise ApiError(422, "no events: send one event or a non-empty list")
    events = validate_all(raw)
    config = resources.config
    limits = Limits(max_event_bytes=config.max_event_bytes, max_batch=config.max_batch, job_ttl_s=config.job_ttl_s)
    publisher = Publisher(resources.redis, queue=config.queue, limits=limits, url="redis")
    try:
        job_ids = await publisher.publish_many(events)
    except EventValidationError as exc:  # larger than KOMAS_MAX_EVENT_BYTES
        raise ApiError(422, exc.errors) from None
    except PublishError as exc:
        raise ApiError(503, str(exc)) from None
    return Published(event_ids=[str(event.event_id) for event in events], job_ids=job_ids)
