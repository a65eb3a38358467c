"""Parked events cost what they need, not more: 20,000 of them leave other writes as fast as before.

Issue 11 saw 1,000 parked events (creates for bots that do not exist) make every other write take
3-5 s, because each batch retried the 500 oldest inline, and about 15,000 make the scheduled pass
overlap itself. Here one worker process (real Redis, real SQLite file) takes a stream of
single-event writes twice: with nothing parked, then with 20,000 events parked for bots that do
not exist. The p99 of publish → commit (the job's enqueue time to its finish, both from its arq
record) with parked events stays within twice its value without, measured in the same run.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import closing
from pathlib import Path
from typing import cast

import pytest

from events import SignalCreated, SyncPublisher
from events.wire import loads
from tests.faults.harness import Rig, StreamBuilder, WorkerProcess, column, wait_until

pytestmark = pytest.mark.slow

PARKED = 20_000
WRITES = 600
#: Between two writes (a steady 100 writes/s: latency, not throughput, is measured).
PACE_S = 0.01


def park_orphans(db_path: Path, count: int) -> None:
    """`count` creates for bots that do not exist, parked by the worker's own `park` (one transaction)."""
    from worker import close_db, init_db
    from worker.db import transaction
    from worker.parking import park

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


def commit_latencies_ms(rig: Rig, worker: WorkerProcess, builder: StreamBuilder) -> list[float]:
    """Publish `WRITES` single-event jobs at a steady pace; each one's enqueue → finish time, from its arq record."""
    job_ids: list[str] = []
    with SyncPublisher.connect(rig.redis.url, queue=rig.queue) as publisher:
        for _ in range(WRITES):
            job_ids.append(publisher.publish(builder.created()))
            time.sleep(PACE_S)
    latencies: dict[str, float] = {}
    with closing(rig.redis.client()) as client:

        def all_done() -> bool:
            if not worker.alive:
                raise AssertionError(f"the worker died:\n{worker.log_tail()}")
            for job_id in job_ids:
                raw = cast(bytes | None, client.get(f"arq:result:{job_id}")) if job_id not in latencies else None
                if raw is not None:
                    record = loads(raw)
                    assert record["s"] is True, record
                    latencies[job_id] = float(record["ft"] - record["et"])
            return len(latencies) == len(job_ids)

        wait_until(all_done, time.monotonic() + 120, "every write to commit", interval=0.2)
    return list(latencies.values())


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * len(ordered)))]


def test_20000_parked_events_leave_the_p99_of_other_writes_within_twice_its_value(rig: Rig) -> None:
    builder = rig.builder(11)

    without = rig.worker()
    without.start()
    without.wait_ready(rig.redis)
    baseline = commit_latencies_ms(rig, without, builder)
    assert without.terminate() == 0

    park_orphans(rig.db_path, PARKED)
    assert column(rig.db_path, "SELECT count(*) FROM parked_events") == [PARKED]
    parked = rig.worker()
    parked.start()
    parked.wait_ready(rig.redis)
    # The first (full) pass, at start-up, has looked at all of them before the writes start.
    wait_until(lambda: "← cron:retry_parked_job" in parked.log_text(), time.monotonic() + 60, "the first pass")
    with_parked = commit_latencies_ms(rig, parked, builder)

    assert column(rig.db_path, "SELECT count(*) FROM parked_events") == [PARKED]  # still waiting, none tried
    assert column(rig.db_path, "SELECT max(attempts) FROM parked_events") == [1]
    assert column(rig.db_path, "SELECT count(*) FROM signals") == [2 * WRITES]
    normal, loaded = p99(baseline), p99(with_parked)
    print(f"p99 publish→commit: {normal:.1f} ms without parked events, {loaded:.1f} ms with {PARKED}")
    assert loaded <= 2 * normal, f"p99 {loaded:.1f} ms with {PARKED} parked events, {normal:.1f} ms without"
    assert parked.terminate() == 0
