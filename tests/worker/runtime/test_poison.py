"""The job gate: the documented body shape runs, anything else becomes one dead-letter call with the raw bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from arq.jobs import deserialize_job_raw
from hypothesis import given, settings
from hypothesis import strategies as st

from events.wire import dumps
from worker.runtime.poison import DEAD_LETTER_JOB, PoisonJob, tolerant_deserializer

deserialize = tolerant_deserializer(["apply_events", "dlq_replay", "cron:retry_parked_job"])
EVENT = {"type": "bot.toggled", "bot_id": 1, "active": True}


def body(**fields: Any) -> bytes:
    job: dict[str, Any] = {"t": None, "f": "apply_events", "a": [[EVENT]], "k": {}, "et": 1_700_000_000_000}
    job.update(fields)
    return json.dumps({key: value for key, value in job.items() if value is not ...}).encode()


def poisoned(raw: bytes) -> PoisonJob:
    job = deserialize(raw)
    assert job["f"] == DEAD_LETTER_JOB, job
    assert job["k"] == {}
    (poison,) = job["a"]
    assert isinstance(poison, PoisonJob)
    assert poison.raw == raw  # stored exactly as it came
    return poison


def test_the_documented_shape_passes_with_its_batch() -> None:
    job = deserialize(body())
    assert job["f"] == "apply_events"
    assert job["a"] == [[EVENT]]
    assert repr(job["a"][0]) == "<1 events>"


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"\x80\x04\x95 pickled, not JSON", "not valid JSON"),
        (b'["just", "a", "list"]', "not an arq job object"),
        (b'{"hello": "world"}', "keys must be exactly"),
        (body(extra=1), "keys must be exactly"),
        (body(f="drop_all_tables"), "unknown job function 'drop_all_tables'"),
        (body(f=DEAD_LETTER_JOB), "unknown job function 'dead_letter_job'"),  # internal: never callable from JSON
        (body(f=5), "unknown job function"),
        (body(a=None), '"a" must be a list'),
        (body(a=5), '"a" must be a list'),
        (body(a=[EVENT, EVENT]), "exactly one list of events"),  # events not wrapped in a list
        (body(a=[[EVENT], [EVENT]]), "exactly one list of events"),  # the second would be an internal argument
        (body(a=[EVENT, EVENT, EVENT]), "exactly one list of events"),
        (body(a=[]), "exactly one list of events"),
        (body(k={"attempt": 3}), "exactly one list of events"),
        (body(k=[]), '"k" an object'),
        (body(et="x"), '"et" must be the enqueue time'),
        (body(et=None), '"et" must be the enqueue time'),
        (body(et=1e300), '"et" must be the enqueue time'),
        (body(et=1.5), '"et" must be the enqueue time'),
        (body(et=True), '"et" must be the enqueue time'),
        (body(et=-1), '"et" must be the enqueue time'),
        (body(et=10**20), '"et" must be the enqueue time'),
        (body(t="x"), '"t" must be null'),
        (body(t=-1), '"t" must be null'),
        (body(t=2.0), '"t" must be null'),
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),  # deeper than any parser's recursion
        (b'{"t":null,"f":"apply_events","a":[[' + b"[" * 3000 + b"]" * 3000 + b']],"k":{},"et":1}', "not valid JSON"),
    ],
)
def test_any_other_body_is_one_dead_letter_call_saying_why(raw: bytes, words: str) -> None:
    assert words in poisoned(raw).reason


def test_the_worker_s_own_jobs_keep_their_arguments() -> None:
    job = deserialize(dumps({"t": None, "f": "dlq_replay", "a": [[1, 2]], "k": {}, "et": 1}))
    assert (job["f"], job["a"], job["k"]) == ("dlq_replay", [[1, 2]], {})
    cron = deserialize(dumps({"t": 1, "f": "cron:retry_parked_job", "a": [], "k": {}, "et": 1}))
    assert cron["f"] == "cron:retry_parked_job"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("tfaket"), inner, max_size=6),
    max_leaves=12,
)


def _runnable(job: dict[str, Any]) -> bool:
    """What arq needs of a deserialized job, and what `apply_events` may receive."""
    name, args, kwargs, job_try, enqueued = deserialize_job_raw(b"", deserializer=lambda _: job)  # arq's own unpacking
    assert job_try is None or (type(job_try) is int and job_try >= 0)
    assert type(enqueued) is int
    assert enqueued >= 0
    if name == DEAD_LETTER_JOB:
        return len(args) == 1 and isinstance(args[0], PoisonJob) and kwargs == {}
    if name == "apply_events":
        return len(args) == 1 and isinstance(args[0], list) and kwargs == {}
    return isinstance(kwargs, dict)


@settings(max_examples=300)
@given(st.binary(max_size=64) | JSON.map(lambda value: json.dumps(value).encode()))
def test_whatever_the_bytes_arq_gets_a_job_it_can_run(raw: bytes) -> None:
    assert _runnable(deserialize(raw))


@settings(max_examples=300)
@given(JSON)
def test_whatever_the_fields_of_a_job_object_arq_gets_a_job_it_can_run(fields: Any) -> None:
    job: dict[str, Any] = {"t": None, "f": "apply_events", "a": [[EVENT]], "k": {}, "et": 1}
    if isinstance(fields, dict):
        job.update(fields)
    assert _runnable(deserialize(json.dumps(job).encode()))
