"""Parked events cost what they need, not more: 20,000 of them leave other writes as fast as before.

Issue 11 saw 1,000 parked events (creates for bots that do not exist) make every other write take
3-5 s, because each batch retried the 500 oldest inline, and about 15,000 make the scheduled pass
overlap itself. Here two worker processes run side by side on one Redis, each with its own queue
and SQLite file: one with nothing parked, one with 20,000 events parked for bots that do not
exist. They take the same stream of single-event writes, interleaved (a write to one, then one to
the other), so both see the same load of this shared machine at the same moments. The p99 of
publish → commit (the job's enqueue time to its finish, from its arq record) with parked events
stays within twice the p99 without.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from contextlib import ExitStack, closing
from pathlib import Path
from typing import cast

import pytest

from events import SignalCreated, SyncPublisher
from events.wire import loads
from tests.faults.harness import Rig, StreamBuilder, WorkerProcess, column, seed_database, wait_until, worker_env

pytestmark = pytest.mark.slow

PARKED = 20_000
WRITES = 600
#: Between two rounds of writes (one to each worker): 50 writes/s each; latency, not throughput, is measured.
PACE_S = 0.02


def park_orphans(db_path: Path, count: int) -> None:
    """`count` creates for bots that do not exist, parked by the worker's own `park` (one transaction)."""
    from worker import close_db, init_db
    from worker.apply.parking import park
    from worker.store.db import transaction

    async def run() -> None:
        init_db(f"sqlite+aiosqlite:///{db_path}")
        try:
            async with transaction():
                for n in range(count):
                    orphan = SignalCreated(
                        signal_uid=f"orphan:{n}", bot_id=100_000 + n % 200, symbol="BTCUSDT", timeframe="1h",
                        direction="long", entry_price=1.0,
                    )  # fmt: skip
                    await park(orphan, f"bot {orphan.bot_id} does not exist")
        finally:
            await close_db()

    asyncio.run(run())


def interleaved_latencies_ms(
    rig: Rig, workers: list[WorkerProcess], builders: list[StreamBuilder]
) -> list[list[float]]:
    """`WRITES` single-event jobs to each worker, alternately; each one's enqueue → finish time, per worker."""
    job_ids: list[list[str]] = [[] for _ in workers]
    with ExitStack() as stack:
        publishers = [
            stack.enter_context(SyncPublisher.connect(rig.redis.url, queue=worker.queue)) for worker in workers
        ]
        for _ in range(WRITES):
            for jobs, publisher, builder in zip(job_ids, publishers, builders, strict=True):
                jobs.append(publisher.publish(builder.created()))
            time.sleep(PACE_S)
    latencies: list[dict[str, float]] = [{} for _ in workers]
    with closing(rig.redis.client()) as client:

        def all_done() -> bool:
            for worker, jobs, found in zip(workers, job_ids, latencies, strict=True):
                if not worker.alive:
                    raise AssertionError(f"a worker died:\n{worker.log_tail()}")
                for job_id in jobs:
                    raw = cast(bytes | None, client.get(f"arq:result:{job_id}")) if job_id not in found else None
                    if raw is not None:
                        record = loads(raw)
                        assert record["s"] is True, record
                        found[job_id] = float(record["ft"] - record["et"])
            return all(len(found) == len(jobs) for found, jobs in zip(latencies, job_ids, strict=True))

        wait_until(all_done, time.monotonic() + 120, "every write to commit", interval=0.2)
    return [list(found.values()) for found in latencies]


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * len(ordered)))]


def test_20000_parked_events_leave_the_p99_of_other_writes_within_twice_its_value(rig: Rig) -> None:
    plain = rig.worker()
    other_db = rig.directory / "parked.db"
    seed = seed_database(other_db)
    parked = WorkerProcess(
        # DEBUG: arq's line per job shows when the first pass has run (at INFO only a summary is written)
        worker_env(other_db, rig.redis.url, f"komas:faults:{uuid.uuid4().hex[:8]}", log_level="DEBUG"),
        rig.directory / "parked.log",
    )
    rig.workers.append(parked)  # killed by the rig at the end, whatever happens
    park_orphans(other_db, PARKED)
    for worker in (plain, parked):
        worker.start()
        worker.wait_ready(rig.redis)
    # The first (full) pass, at start-up, has looked at the parked events before the writes start.
    wait_until(lambda: "← cron:retry_parked_job" in parked.log_text(), time.monotonic() + 60, "the first pass")
    builders = [rig.builder(11), StreamBuilder(seed, random.Random(12))]

    without, with_parked = interleaved_latencies_ms(rig, [plain, parked], builders)

    assert column(other_db, "SELECT count(*) FROM parked_events") == [PARKED]  # still waiting, none tried
    assert column(other_db, "SELECT max(attempts) FROM parked_events") == [1]
    assert column(other_db, "SELECT count(*) FROM signals") == [WRITES]
    assert column(rig.db_path, "SELECT count(*) FROM signals") == [WRITES]
    normal, loaded = p99(without), p99(with_parked)
    print(f"p99 publish→commit: {normal:.1f} ms without parked events, {loaded:.1f} ms with {PARKED}")
    assert loaded <= 2 * normal, f"p99 {loaded:.1f} ms with {PARKED} parked events, {normal:.1f} ms without"
    assert plain.terminate() == 0
    assert parked.terminate() == 0
