"""Operator jobs run by the worker (the single writer): dead-letter replay and drop.

The CLI and the API enqueue these and wait for their result instead of writing the database.
"""

from __future__ import annotations

import logging
from typing import Any

from events.wire import JOB_FUNCTION, event_id_of, loads
from worker.config import Config, get_config
from worker.store.managers.dead_letters import DeadLetterManager
from worker.store.models import DeadLetter

log = logging.getLogger("komas.worker")


def replayable_events(letter: DeadLetter) -> tuple[list[Any], str | None]:
    """The events a dead letter holds (one event, a batch, or the events of a stored job), or why there are none."""
    if letter.payload_truncated:
        return [], f"only the first bytes of its {letter.payload_size}-byte payload are kept; nothing to replay"
    try:
        payload = loads(letter.payload)
    except ValueError:
        return [], "payload is not JSON events; nothing to replay"
    if isinstance(payload, dict) and "f" in payload and "a" in payload:  # a whole poison job
        args = payload.get("a")
        if isinstance(args, list) and args and isinstance(args[0], list) and args[0]:
            return list(args[0]), None
        return [], "payload is a job without a list of events; nothing to replay"
    if isinstance(payload, list):  # a batch dead-lettered whole (over the batch limit)
        return (payload, None) if payload else ([], "an empty batch; nothing to replay")
    return [payload], None


async def dlq_replay(ctx: dict[str, Any], letter_ids: list[int] | None = None) -> dict[str, Any]:
    """Publish dead letters again, one job each or more (all pending ones when no ids); the caller waits for those.

    Returns `replayed` ({id, jobs: [{job_id, event_ids}]} per letter: a batch over the batch limit
    goes out in several jobs), `skipped` ({id, reason}) and `missing` ids.
    The letters are marked replayed before their jobs are queued: an event dead-lettered again
    clears the mark, and must not find it set afterwards.
    """
    config: Config = ctx.get("config") or get_config()
    if letter_ids is None:
        letters = await DeadLetterManager.list_all(limit=100_000)
    else:
        letters = [letter for i in letter_ids if (letter := await DeadLetterManager.get(i)) is not None]
    planned: list[tuple[DeadLetter, list[Any]]] = []
    skipped: list[dict[str, Any]] = []
    for letter in letters:
        events, why_not = replayable_events(letter)
        if why_not is None:
            planned.append((letter, events))
        else:
            skipped.append({"id": letter.id, "reason": why_not})
    if planned:
        await DeadLetterManager.mark_replayed([letter.id for letter, _ in planned])
    replayed: list[dict[str, Any]] = []
    redis = ctx["redis"]
    try:
        for letter, events in planned:
            jobs = []
            for start in range(0, len(events), config.max_batch):  # a batch dead-lettered for its size: in parts
                chunk = events[start : start + config.max_batch]
                job = await redis.enqueue_job(JOB_FUNCTION, chunk, _queue_name=config.queue, _expires=config.job_ttl_s)
                jobs.append({"job_id": job.job_id, "event_ids": [event_id_of(e) for e in chunk]})
            replayed.append({"id": letter.id, "jobs": jobs})
    finally:
        queued = {item["id"] for item in replayed}
        not_queued = [letter.id for letter, _ in planned if letter.id not in queued]
        if not_queued:  # Redis failed part way: those stay pending
            await DeadLetterManager.mark_replayed(not_queued, replayed=False)
    missing = sorted(set(letter_ids or []) - {letter.id for letter in letters})
    log.info("dead letters replayed: %s; skipped: %s; missing: %s", sorted(queued), skipped, missing)
    return {"replayed": replayed, "skipped": skipped, "missing": missing}


async def dlq_drop(ctx: dict[str, Any], letter_id: int) -> dict[str, Any]:
    """Delete one dead letter for good."""
    return {"dropped": await DeadLetterManager.drop(letter_id), "id": letter_id}
