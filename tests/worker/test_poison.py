"""The tolerant deserializer turns poison jobs into dead-letter calls instead of failing."""

from __future__ import annotations

from events.wire import dumps
from worker.poison import DEAD_LETTER_JOB, tolerant_deserializer

deserialize = tolerant_deserializer(["apply_events"])


def test_a_good_job_passes_unchanged() -> None:
    job: dict[str, object] = {"t": None, "f": "apply_events", "a": [[{"x": 1}]], "k": {}, "et": 1}
    assert deserialize(dumps(job)) == job


def test_bytes_that_are_not_json_become_a_dead_letter_call_with_the_raw_text() -> None:
    job = deserialize(b"\x80\x04not json at all")
    assert job["f"] == DEAD_LETTER_JOB
    raw, reason = job["a"]
    assert "not json at all" in raw
    assert "not valid JSON" in reason


def test_an_unknown_function_becomes_a_dead_letter_call() -> None:
    body = dumps({"t": None, "f": "drop_tables", "a": [], "k": {}, "et": 1})
    job = deserialize(body)
    assert job["f"] == DEAD_LETTER_JOB
    assert job["a"] == [body.decode(), "unknown job function 'drop_tables'"]


def test_json_that_is_not_an_arq_job_becomes_a_dead_letter_call() -> None:
    job = deserialize(b'["just", "a", "list"]')
    assert job["f"] == DEAD_LETTER_JOB
    assert "not an arq job" in job["a"][1]
