"""Jobs no producer should write, written straight into Redis between good jobs: the worker never stops.

Each malformed body of issue 11's list (what a Node.js producer and hand-made jobs did) goes in
between good jobs. The worker must stay up, the good jobs must apply, and every job must be
accounted for: its events applied, or the job dead-lettered whole with its raw bytes and a reason
naming it (one row, however many events it held).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from events import BotToggled
from events.wire import JOB_KEY_PREFIX, dumps, encode_job
from tests.faults.harness import Rig, check_invariants, column, enqueue_raw, event_ids

MAX_BATCH = 50


def job_body(args: Any = ..., **fields: Any) -> bytes:
    """An arq job object as a foreign producer might write it, fields replaced at will."""
    job: dict[str, Any] = {"t": None, "f": "apply_events", "a": args, "k": {}, "et": int(time.time() * 1000)}
    job.update(fields)
    return json.dumps(job).encode()


def write(client: Any, queue: str, job_id: bytes, body: bytes, score: float) -> None:
    with client.pipeline(transaction=True) as pipe:
        pipe.set(JOB_KEY_PREFIX.encode() + job_id, body, px=3_600_000)
        pipe.zadd(queue, {job_id: score})
        pipe.execute()


def test_no_job_stops_the_worker_and_every_event_is_accounted_for(rig: Rig) -> None:
    builder = rig.builder(11)
    good = builder.mixed(150)
    wire = [event.to_wire() for event in good]
    toggles = [BotToggled(bot_id=1, active=n % 2 == 0).to_wire() for n in range(4)]
    e1, e2, e3 = toggles[:3]
    # `occurred_at` at the edge of the calendar inside a batch of three: only that event goes.
    edge = {**BotToggled(bot_id=2, active=True).to_wire(), "occurred_at": "9999-12-31T23:59:59-05:00"}
    edge_neighbours = [BotToggled(bot_id=3, active=True).to_wire(), BotToggled(bot_id=3, active=False).to_wire()]
    event_and_deep = dumps(e1) + b"," + b"[" * 3000 + b"]" * 3000  # deeper than any JSON parser recurses

    malformed = {
        "a null": job_body(None),
        "a number": job_body(5),
        "et text": job_body([[e1]], et="x"),
        "et null": job_body([[e1]], et=None),
        "et huge": job_body([[e1]], et=1e300),
        "t text": job_body([[e1]], t="x"),
        "events not wrapped": job_body([e1, e2]),
        "two lists": job_body([[e1], [e2]]),
        "three events as arguments": job_body([e1, e2, e3]),
        "an extra keyword": job_body([[e1]], k={"attempt": 99}),
        "nested 3000 deep": job_body([["EVENTS"]]).replace(b'"EVENTS"', event_and_deep),
        "a million elements": job_body([[1] * 1_000_000]),
        "not JSON": b"\x80\x04\x95 pickled",
        "an internal function": job_body([["x", "y"]], f="dead_letter_job"),
    }
    client = rig.redis.client()
    foreign_id = b"\xff\xfe-not-utf8-" + uuid.uuid4().hex.encode()
    try:
        ids_of: dict[str, str] = {}
        chunks = [wire[start : start + 10] for start in range(0, len(wire), 10)]
        for n, (name, body) in enumerate(malformed.items()):
            enqueue_raw(client, rig.queue, encode_job([dumps(e) for e in chunks[n]]).body)
            ids_of[name] = enqueue_raw(client, rig.queue, body)
        for chunk in chunks[len(malformed) :]:
            enqueue_raw(client, rig.queue, encode_job([dumps(e) for e in chunk]).body)
        # Scores nobody should write: -inf and 0 are due now; a foreign id that is not UTF-8.
        minus_inf = encode_job([dumps(toggles[3])])
        write(client, rig.queue, minus_inf.job_id.encode(), minus_inf.body, float("-inf"))
        zero = encode_job([dumps(edge_neighbours[0])])
        write(client, rig.queue, zero.job_id.encode(), zero.body, 0)
        write(client, rig.queue, foreign_id, encode_job([dumps(e3)]).body, time.time() * 1000)
        # A try count that is not a number, and a batch holding the event at the edge of the calendar.
        edged = enqueue_raw(client, rig.queue, encode_job([dumps(e) for e in (edge_neighbours[1], edge)]).body)
        client.set("arq:retry:" + edged, "x")
    finally:
        client.close()

    worker = rig.worker(max_batch=MAX_BATCH)
    worker.start()
    applied = [*event_ids(good), toggles[3]["event_id"], *(e["event_id"] for e in edge_neighbours)]
    rig.drain(applied, timeout=90, worker=worker)

    letters = column(rig.db_path, "SELECT reason FROM dead_letters WHERE event_id IS NULL")
    for name, job_id in ids_of.items():
        naming = [reason for reason in letters if f"job {job_id}:" in reason]
        assert len(naming) == 1, (name, job_id, letters)
    assert any("is not UTF-8" in reason and repr(foreign_id) in reason for reason in letters), letters
    assert len(letters) == len(malformed) + 1, "\n".join(letters)  # one row each, the million-element batch too
    edge_letter = column(rig.db_path, "SELECT reason FROM dead_letters WHERE event_id = ?", edge["event_id"])
    assert len(edge_letter) == 1, edge_letter
    # e1..e3 only ever arrived inside malformed jobs: none of them applied.
    applied_ids = set(column(rig.db_path, "SELECT event_id FROM processed_events"))
    assert not applied_ids & {e1["event_id"], e2["event_id"], e3["event_id"]}
    check_invariants(rig.db_path, [*applied, edge["event_id"]], [edge["event_id"]], raw_dead_letters=len(letters))
    assert worker.alive
    assert worker.starts == 1
    assert "stopped on an unexpected error" not in worker.log_text()
    assert worker.terminate() == 0
