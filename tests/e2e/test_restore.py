"""Exactly once across a restore: a backup put back, then everything published again with the same
event ids, ends exactly where the live database was; nothing is applied twice.

Publisher → real Redis → burst worker → SQLite file, `backup`, more events, `restore`, replay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from events import BaseEvent, Publisher
from tests.e2e.conftest import E2E
from tests.e2e.test_worker_e2e import bot_stats, closed, created, ids, make_bot, processed_ids, stats_from_signals
from worker import close_db
from worker.ops.maintenance import backup
from worker.ops.restore import restore
from worker.store.db import read_session
from worker.store.models import Signal


async def signal_rows() -> list[tuple[Any, ...]]:
    async with read_session() as session:
        rows = await session.execute(
            select(
                Signal.uid,
                Signal.bot_id,
                Signal.status,
                Signal.entry_price,
                Signal.exit_price,
                Signal.exit_reason,
                Signal.pnl_percent,
                Signal.pnl_amount,
            ).order_by(Signal.uid)
        )
        return [tuple(row) for row in rows]


async def publish(e2e: E2E, events: list[BaseEvent]) -> list[dict[str, Any]]:
    """Publish in jobs of 7 events, run the worker until the queue is empty, return the jobs' results."""
    async with Publisher.connect(e2e.config.redis_url, queue=e2e.queue) as publisher:
        job_ids = [e2e.track(await publisher.publish_many(events[at : at + 7])) for at in range(0, len(events), 7)]
    await e2e.run_worker()
    return [await e2e.result(job_id) for jobs in job_ids for job_id in jobs]


def stream(bot_ids: list[int], prefix: str, opened: int, to_close: list[str]) -> list[BaseEvent]:
    """`opened` new signals spread over the bots, and closes of the signals named (wins and losses)."""
    events: list[BaseEvent] = [
        created(bot_ids[n % len(bot_ids)], f"{prefix}:{n}", entry_price=100.0 + n) for n in range(opened)
    ]
    for n, uid in enumerate(to_close):
        events.append(closed(uid, pnl_percent=1.5 if n % 3 else -0.75))
    return events


async def test_events_after_the_backup_apply_once_after_a_restore(e2e: E2E) -> None:
    bot_ids = [await make_bot("alpha", 100.0), await make_bot("beta", 250.0)]

    # Before the backup: 20 signals, 8 of them closed.
    before = stream(bot_ids, "before", 20, [f"before:{n}" for n in range(8)])
    assert sum(result["applied"] for result in await publish(e2e, before)) == len(before)
    taken = await backup(e2e.config)
    assert taken["ok"], taken

    # After it: 15 more signals, closes of old and new ones (some of these closes refer to signals of the backup).
    after = stream(bot_ids, "after", 15, [f"before:{n}" for n in range(8, 14)] + [f"after:{n}" for n in range(5)])
    assert sum(result["applied"] for result in await publish(e2e, after)) == len(after)
    live = (await signal_rows(), await bot_stats(), sorted(await processed_ids()))
    assert len(live[0]) == 35
    assert sum(1 for row in live[0] if row[2] == "closed") == 19
    assert live[1] == await stats_from_signals()

    await close_db()
    restored = await restore(e2e.config, Path(taken["file"]), worker_running=False)
    assert restored["ok"]
    assert restored["counts"]["signals"] == 20
    assert restored["counts"]["processed_events"] == len(before)
    await e2e.open_db()
    assert sorted(await processed_ids()) == sorted(ids(*before))

    # Every event published again, the same objects (same ids), in the same order.
    replay = await publish(e2e, before + after)

    assert sorted(event_id for result in replay for event_id in result["duplicate_ids"]) == sorted(ids(*before))
    assert sorted(event_id for result in replay for event_id in result["applied_ids"]) == sorted(ids(*after))
    assert sum(result["dead_lettered"] + result["parked"] for result in replay) == 0
    assert (await signal_rows(), await bot_stats(), sorted(await processed_ids())) == live
    assert await bot_stats() == await stats_from_signals()

    # And once more: everything is a duplicate now, nothing moves.
    again = await publish(e2e, before + after)
    assert sum(result["applied"] for result in again) == 0
    assert sum(result["duplicates"] for result in again) == len(before) + len(after)
    assert (await signal_rows(), await bot_stats(), sorted(await processed_ids())) == live
