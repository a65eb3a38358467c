"""Out of order: closes before their creates; every signal's events shuffled.

A close whose signal does not exist yet is parked, not applied wrongly and not dropped, and is
applied once its create arrives; nothing is dead-lettered (the park timeout is far away).
"""

from __future__ import annotations

import random
import time

from events import BaseEvent
from tests.faults.harness import (
    Rig,
    accounted_ids,
    check_invariants,
    check_outcome,
    column,
    event_ids,
    random_chunks,
    wait_until,
)


def test_closes_published_before_their_creates_all_apply(rig: Rig) -> None:
    rng = random.Random(4)
    builder = rig.builder(4)
    creates = [builder.created() for _ in range(150)]
    closes = [builder.closed(event.signal_uid) for event in creates[:120]]
    rng.shuffle(closes)
    others: list[BaseEvent] = [builder.backtest() for _ in range(20)] + [builder.toggled() for _ in range(10)]
    rig.publish(random_chunks([*closes, *others[:15]], rng, 1, 25))
    worker = rig.worker()
    worker.start()
    worker.wait_ready(rig.redis)
    # The closes are taken (and parked) before any create exists: a worker that found them all in
    # one commit round would apply each create before its close, with nothing to park.
    # (Not "the queue is empty": while events are parked, the worker's parked-event pass is a job in it.)
    first = set(event_ids(others[:15]))

    def closes_taken() -> bool:
        parked = column(rig.db_path, "SELECT count(*) FROM parked_events")[0]
        return bool(parked == len(closes) and first <= accounted_ids(rig.db_path))

    wait_until(closes_taken, time.monotonic() + 60, "the closes to be taken")
    rig.publish(random_chunks([*creates, *others[15:]], rng, 1, 25))
    ids = event_ids([*creates, *closes, *others])
    rig.drain(ids, timeout=60, worker=worker)
    check_invariants(rig.db_path, ids)
    check_outcome(rig.db_path, builder)
    assert "parked: signal" in worker.log_text()  # the closes really arrived first
    assert worker.terminate() == 0


def test_each_signals_events_shuffled_across_jobs(rig: Rig) -> None:
    """Per signal [create, close] in random order, the signals interleaved, in jobs of random sizes."""
    rng = random.Random(44)
    builder = rig.builder(44)
    pairs: list[list[BaseEvent]] = []
    for _ in range(200):
        create = builder.created()
        pair: list[BaseEvent] = [create, builder.closed(create.signal_uid)]
        rng.shuffle(pair)
        pairs.append(pair)
    stream: list[BaseEvent] = []
    while pairs:  # interleave: take the next event of a random signal
        pair = rng.choice(pairs)
        stream.append(pair.pop(0))
        if not pair:
            pairs.remove(pair)
    stream += [builder.toggled() for _ in range(5)]
    rng.shuffle(stream[-60:])
    worker = rig.worker()
    worker.start()
    rig.publish(random_chunks(stream, rng, 1, 30))
    ids = event_ids(stream)
    rig.drain(ids, timeout=60, worker=worker)
    check_invariants(rig.db_path, ids)
    check_outcome(rig.db_path, builder)
    assert worker.terminate() == 0


def test_a_close_whose_create_never_comes_is_dead_lettered_after_the_park_timeout(rig: Rig) -> None:
    """Parked, retried on schedule, then dead-lettered with the reason; its neighbours apply."""
    builder = rig.builder(5)
    orphan_create = builder.created()
    orphan = builder.closed(orphan_create.signal_uid)
    builder.expected.signals.pop(orphan_create.signal_uid)  # never published: its close cannot apply
    builder.wins = {bot_id: [0, 0, 0, 0.0] for bot_id in builder.seed.bots}
    neighbours = builder.mixed(40)
    worker = rig.worker(park_timeout_s=2)
    worker.start()
    rig.publish([[orphan, *neighbours[:20]], neighbours[20:]])
    ids = event_ids([orphan, *neighbours])
    rig.drain(ids, timeout=60, worker=worker)
    check_invariants(rig.db_path, ids, expected_dead=event_ids([orphan]))
    check_outcome(rig.db_path, builder)
    (reason,) = column(rig.db_path, "SELECT reason FROM dead_letters")
    assert "dependency still missing after 2s" in reason
    assert orphan_create.signal_uid in reason
    assert worker.terminate() == 0
