"""The maintenance jobs run by the real worker (burst mode) on real Redis and real SQLite files.

Each job is enqueued as `komas ops` and `POST /api/ops` enqueue it, between jobs of events, so it
runs while the worker applies them; its report is read as the CLI reads it (the job's result).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from events import SignalClosed, SignalCreated
from events.wire import dumps, encode_job
from tests.e2e.conftest import E2E
from worker import BotManager
from worker.config import Config
from worker.runtime.maintenance_jobs import MAINTENANCE_JOB, maintenance_cron_jobs
from worker.runtime.status import maintenance_status
from worker.store.db import transaction


def database_path(e2e: E2E) -> Path:
    database = make_url(e2e.config.database_url).database
    assert database
    return Path(database)


async def enqueue_events(e2e: E2E, events: list[Any], per_job: int = 500) -> None:
    for start in range(0, len(events), per_job):
        body = encode_job([dumps(event.to_wire()) for event in events[start : start + per_job]]).body
        await e2e.enqueue_raw(body)


async def enqueue_op(e2e: E2E, name: str, **options: Any) -> str:
    """As `komas ops` enqueues it: arq's client, JSON (never pickle)."""
    e2e.pool.job_serializer = dumps
    job = await e2e.pool.enqueue_job(MAINTENANCE_JOB, name, options, _queue_name=e2e.queue)
    assert job is not None
    return e2e.track([job.job_id])[0]


def trading(bot_ids: list[int], signals: int, closes: int, tag: str) -> list[Any]:
    opened = [
        SignalCreated(
            signal_uid=f"{tag}:{n}",
            bot_id=bot_ids[n % len(bot_ids)],
            symbol="BTCUSDT",
            timeframe="1h",
            direction="long",
            entry_price=100.0,
        )
        for n in range(signals)
    ]
    closed = [
        SignalClosed(signal_uid=f"{tag}:{n}", exit_price=101.0, exit_reason="tp1", pnl_percent=(n % 7) - 3.0)
        for n in range(closes)
    ]
    return [*opened, *closed]


def consistency(path: Path) -> dict[str, Any]:
    """What must hold in any consistent copy: integrity, signals ⇔ their create events, counters ⇔ closes."""
    with closing(sqlite3.connect(path)) as db:
        check = db.execute("PRAGMA integrity_check").fetchone()[0]
        signals = db.execute("SELECT count(*) FROM signals").fetchone()[0]
        creates = db.execute("SELECT count(*) FROM processed_events WHERE event_type = 'signal.created'").fetchone()[0]
        closed = db.execute("SELECT count(*) FROM signals WHERE status = 'closed'").fetchone()[0]
        closes = db.execute("SELECT count(*) FROM processed_events WHERE event_type = 'signal.closed'").fetchone()[0]
        counters = db.execute("SELECT id, total_signals, total_wins, total_losses, total_profit FROM bots").fetchall()
        sums = dict.fromkeys((row[0] for row in counters), (0, 0, 0, 0))
        for bot_id, n, wins, losses, profit in db.execute(
            "SELECT bot_id, count(*), sum(pnl_percent > 0), sum(pnl_percent <= 0), coalesce(sum(pnl_amount), 0)"
            " FROM signals WHERE status = 'closed' GROUP BY bot_id"
        ):
            sums[bot_id] = (n, wins, losses, profit)
    return {
        "check": check,
        "signals_match_creates": signals == creates,
        "closed_match_closes": closed == closes,
        "counters_match_signals": {row[0]: tuple(row[1:]) for row in counters} == sums,
        "signals": signals,
    }


async def test_a_backup_taken_while_events_apply_is_consistent_and_verified(e2e: E2E, tmp_path: Path) -> None:
    e2e.config = e2e.config.model_copy(update={"backup_dir": str(tmp_path / "backups")})
    bots = [(await BotManager.create(name=f"b{n}", symbol="BTCUSDT", timeframe="1h")).id for n in range(3)]
    await enqueue_events(e2e, trading(bots, 3000, 2000, "before"))
    backup_job = await enqueue_op(e2e, "backup")
    await enqueue_events(e2e, trading(bots, 3000, 2000, "after"))
    await e2e.run_worker()

    report = await e2e.result(backup_job)
    assert report["ok"] is True, report
    copy = Path(report["file"])
    assert copy.parent == tmp_path / "backups"
    mode, sidecar = copy.stat().st_mode, copy.with_suffix(".json").exists()  # noqa: ASYNC240 (a test's look)
    assert mode & 0o777 == 0o600
    assert sidecar
    assert report["check"] == "ok"
    assert report["schema_revision"]
    found = consistency(copy)
    assert found["check"] == "ok"
    assert found["signals_match_creates"], found
    assert found["closed_match_closes"], found
    assert found["counters_match_signals"], found
    assert report["counts"]["signals"] == found["signals"]
    assert consistency(database_path(e2e))["signals"] == 6000


async def test_backups_beyond_keep_are_removed_and_said(e2e: E2E, tmp_path: Path) -> None:
    e2e.config = e2e.config.model_copy(update={"backup_dir": str(tmp_path / "b"), "backup_keep": 2})
    jobs = [await enqueue_op(e2e, "backup") for _ in range(3)]
    await e2e.run_worker()
    reports = sorted([await e2e.result(job) for job in jobs], key=lambda report: str(report["file"]))
    assert all(report["ok"] for report in reports)
    assert sorted(p.name for p in (tmp_path / "b").glob("*.db")) == [Path(r["file"]).name for r in reports[1:]]
    assert [file for report in reports for file in report["removed"]] == [reports[0]["file"]]
    shown = await maintenance_status(e2e.config)
    assert shown["last_backup"]["file"] == reports[-1]["file"]
    assert shown["last_runs"]["backup"]["ok"] is True
    assert set(shown["next_runs"]) == {"backup", "checkpoint", "optimize", "purge"}


async def test_checkpoint_optimize_vacuum_and_integrity_report_what_they_did(e2e: E2E) -> None:
    bots = [(await BotManager.create(name="c", symbol="BTCUSDT", timeframe="1h")).id]
    await enqueue_events(e2e, trading(bots, 500, 0, "wal"))
    jobs = {name: await enqueue_op(e2e, name) for name in ("checkpoint", "optimize", "vacuum", "integrity")}
    await e2e.run_worker()
    reports = {name: await e2e.result(job) for name, job in jobs.items()}
    assert all(report["ok"] for report in reports.values()), reports
    assert reports["checkpoint"]["wal_bytes_after"] == 0
    assert reports["integrity"]["check"] == "ok"
    assert reports["vacuum"]["bytes_after"] > 0


async def test_unknown_operations_and_options_are_refused_in_the_report(e2e: E2E) -> None:
    unknown = await enqueue_op(e2e, "drop-everything")
    bad = await enqueue_op(e2e, "purge", dry_run="yes")
    await e2e.run_worker()
    assert (await e2e.result(unknown))["ok"] is False
    assert "unknown operation" in (await e2e.result(unknown))["error"]
    assert "dry_run" in (await e2e.result(bad))["error"]


async def test_purge_keeps_open_signals_and_every_window(e2e: E2E) -> None:
    e2e.config = e2e.config.model_copy(
        update={"job_ttl_s": 60, "park_timeout_s": 10, "dedup_window_s": 3600, "retention_signals_days": 30}
    )
    bot = (await BotManager.create(name="p", symbol="BTCUSDT", timeframe="1h")).id
    old = trading([bot], 6, 3, "old")  # 3 closed, 3 open
    recent = trading([bot], 4, 2, "new")
    await enqueue_events(e2e, old + recent, per_job=100)
    await e2e.run_worker()
    async with transaction() as session:  # age the "old" rows by 60 days
        await session.execute(
            text(
                "UPDATE signals SET created_at = datetime('now', '-60 days'), closed_at = datetime('now', '-60 days')"
                " WHERE uid LIKE 'old:%' AND status = 'closed'"
            )
        )
        await session.execute(
            text("UPDATE signals SET created_at = datetime('now', '-60 days') WHERE uid LIKE 'old:%'")
        )
        ids = [str(event.event_id) for event in old]
        await session.execute(
            text(
                "UPDATE processed_events SET applied_at = datetime('now', '-2 days')"
                " WHERE event_id IN (SELECT value FROM json_each(:ids))"
            ),
            {"ids": dumps(ids).decode()},
        )
    dry = await enqueue_op(e2e, "purge", dry_run=True)
    await e2e.run_worker()
    planned = await e2e.result(dry)
    assert planned["signals"]["rows"] == 3, planned
    assert planned["processed_events"]["rows"] == len(old), planned
    done = await enqueue_op(e2e, "purge")
    await enqueue_events(e2e, recent, per_job=100)  # a redelivery inside the window: still duplicates
    await e2e.run_worker()
    report = await e2e.result(done)
    assert report["signals"]["rows"] == 3
    assert report["processed_events"]["rows"] == len(old)
    with closing(sqlite3.connect(database_path(e2e))) as db:
        left = dict(db.execute("SELECT uid, status FROM signals").fetchall())
        applied = db.execute("SELECT count(*) FROM processed_events").fetchone()[0]
    assert {uid for uid, status in left.items() if uid.startswith("old:")} == {"old:3", "old:4", "old:5"}
    assert all(status in ("active", "pending") for uid, status in left.items() if uid.startswith("old:"))
    assert sum(uid.startswith("new:") for uid in left) == 4
    assert applied == len(recent)


async def test_rebuild_stats_repairs_exactly_the_corrupted_bots(e2e: E2E) -> None:
    bots = [(await BotManager.create(name=f"r{n}", symbol="BTCUSDT", timeframe="1h")).id for n in range(4)]
    await enqueue_events(e2e, trading(bots, 400, 300, "rs"))
    await e2e.run_worker()
    before = consistency(database_path(e2e))
    assert before["counters_match_signals"]
    async with transaction() as session:
        await session.execute(text("UPDATE bots SET total_wins = total_wins + 5 WHERE id = :id"), {"id": bots[1]})
        await session.execute(text("UPDATE bots SET total_profit = total_profit + 123 WHERE id = :id"), {"id": bots[3]})
    check = await enqueue_op(e2e, "rebuild-stats", check=True)
    await e2e.run_worker()
    checked = await e2e.result(check)
    assert sorted(bot["bot_id"] for bot in checked["differed"]) == [bots[1], bots[3]]
    assert checked["fixed"] == 0
    assert not consistency(database_path(e2e))["counters_match_signals"]
    fix = await enqueue_op(e2e, "rebuild-stats")
    await e2e.run_worker()
    fixed = await e2e.result(fix)
    assert sorted(bot["bot_id"] for bot in fixed["differed"]) == [bots[1], bots[3]]
    after = consistency(database_path(e2e))
    assert after["counters_match_signals"], after


def test_the_schedule_follows_the_settings_and_a_disabled_job_is_not_registered(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/k.db"
    every = {job.name for job in maintenance_cron_jobs(Config(database_url=url))}
    assert every == {
        "cron:ops:backup",
        "cron:ops:checkpoint",
        "cron:ops:optimize",
        "cron:ops:purge",
        "cron:ops:wal-watch",
    }
    some = Config(database_url=url, cron_backup_hours=0, cron_purge_hours=6, cron_checkpoint_wal_bytes=0)
    jobs = {job.name: job for job in maintenance_cron_jobs(some)}
    assert set(jobs) == {"cron:ops:checkpoint", "cron:ops:optimize", "cron:ops:purge"}
    assert jobs["cron:ops:purge"].hour == {0, 6, 12, 18}
    postgres = Config(database_url="postgresql+asyncpg://u@localhost/db")
    assert "cron:ops:wal-watch" not in {job.name for job in maintenance_cron_jobs(postgres)}


async def test_on_postgresql_backup_says_to_use_pg_dump_and_does_nothing(postgres_url: str) -> None:
    from worker.ops.catalogue import run_operation

    report = await run_operation(Config(database_url=postgres_url), "backup", {})
    assert report["ok"] is True
    assert "pg_dump" in report["skipped"]
