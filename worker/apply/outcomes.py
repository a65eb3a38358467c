"""What became of one event, read from the result of the `apply_events` job that carried it.

The worker answers each job with `worker.runtime.jobs.BatchReport.as_result()`. The REST API (a write
waiting for its command) and `komas dlq replay` (each replayed event) read that answer here, the
same way, so a change to the report changes one reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["applied", "duplicate", "rejected", "dead_lettered", "parked", "pending"]


@dataclass(frozen=True)
class EventOutcome:
    """One event's fate in a job's result.

    `applied` and `duplicate` are final and fine; `rejected` (a refused command, with an HTTP-like
    `code`) and `dead_lettered` are final failures with a `reason`; `parked` waits for a missing
    dependency; `pending` means the job did not settle it (re-enqueued while the database was away).
    """

    status: Status
    reason: str | None = None
    code: int | None = None
    #: A command handler's answer (e.g. the id of a created preset), when it gave one.
    answer: dict[str, Any] = field(default_factory=dict)


def event_outcome(result: Any, event_id: str | None) -> EventOutcome | None:
    """The outcome of `event_id` in an `apply_events` result; None when the result is not such a report.

    An event that came without an id can only be found among the dead letters (as id None).
    """
    if not isinstance(result, dict):
        return None
    for rejection in result.get("rejections", []):
        if rejection.get("event_id") == event_id:
            return EventOutcome("rejected", rejection.get("reason", "refused"), int(rejection.get("status", 422)))
    for letter in result.get("dead_letters", []):
        if letter.get("event_id") == event_id:
            return EventOutcome("dead_lettered", letter.get("reason", "refused by the worker"))
    answers: dict[str, Any] = result.get("results", {})
    if event_id in answers:
        return EventOutcome("applied", answer=answers[event_id])
    if event_id in result.get("applied_ids", []):
        return EventOutcome("applied")
    if event_id in result.get("duplicate_ids", []):
        return EventOutcome("duplicate")
    if event_id in result.get("parked_ids", []):
        return EventOutcome("parked")
    return EventOutcome("pending")
