"""`worker.apply.outcomes`: one event's fate read from a real `apply_events` report, as the API and the CLI read it."""

from __future__ import annotations

from typing import Any

import pytest

from worker.apply.outcomes import EventOutcome, event_outcome
from worker.runtime.jobs import BatchReport


def report() -> dict[str, Any]:
    made = BatchReport(applied=["a", "cmd"], duplicates=["d"], parked=["p"])
    made.dead_lettered = [{"event_id": "x", "reason": "bad price"}, {"event_id": None, "reason": "no event_id"}]
    made.rejected = [{"event_id": "r", "type": "preset.create", "status": 409, "reason": "name taken"}]
    made.results = {"cmd": {"id": 7}}
    return made.as_result()


@pytest.mark.parametrize(
    ("event_id", "expected"),
    [
        ("a", EventOutcome("applied")),
        ("cmd", EventOutcome("applied", answer={"id": 7})),
        ("d", EventOutcome("duplicate")),
        ("p", EventOutcome("parked")),
        ("x", EventOutcome("dead_lettered", "bad price")),
        (None, EventOutcome("dead_lettered", "no event_id")),
        ("r", EventOutcome("rejected", "name taken", 409)),
        ("elsewhere", EventOutcome("pending")),
    ],
)
def test_each_outcome_is_read_from_the_report(event_id: str | None, expected: EventOutcome) -> None:
    assert event_outcome(report(), event_id) == expected


def test_a_requeued_job_settles_nothing_and_a_foreign_answer_is_not_a_report() -> None:
    assert event_outcome({"requeued": 3, "reason": "database is locked"}, "a") == EventOutcome("pending")
    assert event_outcome(["not", "a", "report"], "a") is None
