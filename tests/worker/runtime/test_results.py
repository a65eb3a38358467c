"""What the worker writes of a finished job: arq's record without the batch it carried."""

from __future__ import annotations

from arq.jobs import deserialize_result, serialize_result

from events.wire import dumps, loads
from worker.runtime.results import is_result, worker_dumps

BATCH = [{"type": "signal.created", "event_id": "e1"}, {"type": "signal.created", "event_id": "e2"}]


def finished(result: object) -> bytes | None:
    return serialize_result(
        "apply_events", (BATCH,), {}, 1, 1000, True, result, 1001, 1002, "ref", "q", "job-1", serializer=worker_dumps
    )


def test_a_finished_job_is_recorded_without_its_events() -> None:
    raw = finished({"applied": 2, "applied_ids": ["e1", "e2"]})
    assert raw is not None
    record = deserialize_result(raw, deserializer=loads)  # arq's own reader still reads it

    assert not record.args
    assert record.result == {"applied": 2, "applied_ids": ["e1", "e2"]}
    assert (record.function, record.job_try, record.success, record.job_id) == ("apply_events", 1, True, "job-1")
    assert b"signal.created" not in raw


def test_queued_jobs_the_worker_enqueues_keep_their_arguments() -> None:
    job = {"t": 1, "f": "apply_events", "a": [BATCH], "k": {}, "et": 1000}
    assert not is_result(job)
    assert worker_dumps(job) == dumps(job)


def test_other_values_are_written_as_dumps_writes_them() -> None:
    for value in ({"r": 1}, {"ft": 2}, [1, 2], "text", {"r": 1, "ft": 2, "a": []}):
        assert worker_dumps(value) == dumps(value)
