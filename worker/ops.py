"""Operator jobs run by the worker (the single writer): dead-letter replay and drop.

The CLI and the API enqueue these and wait for their result instead of writing the database.
"""

from __future__ import annotations

import logging
from typing import Any

from events.wire import JOB_FUNCTION, loads
from worker.config import Config, get_config
from worker.managers.dead_letters import DeadLetterManager
from worker.models import DeadLetter

log = logging.getLogger("komas.worker")


def replayable_events(letter: DeadLetter) -> list[Any] | None:
    """The events a dead letter holds: one event, a batch, or the events of a whole stored job; None if not JSON."""
    try:
        payload = loads(letter.payload)
    except ValueError:
        return None
    if isinstance(payload, dict) and "f" in payload and "a" in payload:  # a whole poison job
        args = payload.get("a")
        if isinstance(args, list) and args and isinstance(args[0], list):
            return list(args[0])
        return None
    if isinstance(payload, list):  # a batch dead-lettered whole (over the batch limit)
        return payload
    return [payload]


async def dlq_replay(ctx: dict[str, Any], letter_ids: list[int] | None = None) -> dict[str, Any]:
    """Re-publish dead letters (all pending ones when no ids); an event already applied stays a no-op."""
    config: Config = ctx.get("config") or get_config()
    if letter_ids is None:
        letters = await DeadLetterManager.list_all(limit=100_000)
    else:
        letters = [letter for i in letter_ids if (letter := await DeadLetterManager.get(i)) is not None]
    replayed: list[int] = []
    skipped: list[dict[str, Any]] = []
    for letter in letters:
        events = replayable_events(letter)
        if not events:
            skipped.append({"id": letter.id, "reason": "payload is not JSON events; nothing to replay"})
            continue
        for start in range(0, len(events), config.max_batch):
            chunk = events[start : start + config.max_batch]
            await ctx["redis"].enqueue_job(JOB_FUNCTION, chunk, _queue_name=config.queue, _expires=config.job_ttl_s)
        replayed.append(letter.id)
    if replayed:
        await DeadLetterManager.mark_replayed(replayed)
    missing = sorted(set(letter_ids or []) - {letter.id for letter in letters})
    log.info("dead letters replayed: %s; skipped: %s; missing: %s", replayed, skipped, missing)
    return {"replayed": replayed, "skipped": skipped, "missing": missing}


async def dlq_drop(ctx: dict[str, Any], letter_id: int) -> dict[str, Any]:
    """Delete one dead letter for good."""
    return {"dropped": await DeadLetterManager.drop(letter_id), "id": letter_id}
