"""`komas worker --burst` through the runner: what `komas publish` queued is applied and `komas status` shows it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from tests.worker.cli.conftest import Komas
from worker import BotManager, PresetManager, SettingsManager, SignalManager, close_db, init_db

T = TypeVar("T")
SAMPLE = Path(__file__).resolve().parents[3] / "data" / "samples" / "trading.jsonl"


def read(komas: Komas, query: Callable[[], Awaitable[T]]) -> T:
    """Run one manager read on the test's database, outside the worker."""

    async def run() -> T:
        init_db(komas.database_url, migrate=False)
        try:
            return await query()
        finally:
            await close_db()

    return asyncio.run(run())


def test_published_event_is_applied_and_shown_as_last_applied(komas: Komas) -> None:
    published = komas("publish", "settings.set", "--data", '{"key": "optimization.workers", "value": 4}')
    assert published.exit_code == 0, published.output
    event_id = published.stdout.split()[2]
    assert komas.client.zcard(komas.queue) == 1

    komas.run_worker()

    assert read(komas, lambda: SettingsManager.get("optimization.workers")) == 4
    report = komas.json("status", "--json")
    assert report["queue"]["depth"] == 0
    assert report["queue"]["oldest_age_s"] is None
    assert report["database"]["applied_events"] == 1
    assert report["database"]["dead_letters"] == 0
    last = report["database"]["last_applied"]
    assert (last["event_id"], last["type"]) == (event_id, "settings.set")


def test_the_sample_file_applies_in_order(komas: Komas) -> None:
    """data/samples/trading.jsonl expects bot 1 and preset 1: create them first, by events too."""
    for event_type, data in [
        ("preset.create", {"name": "TRG default"}),
        ("bot.create", {"name": "bot one", "symbol": "BTCUSDT", "timeframe": "1h", "preset_id": 1}),
    ]:
        assert komas("publish", event_type, "--data", json.dumps(data)).exit_code == 0
    assert komas("publish", "-f", str(SAMPLE)).exit_code == 0

    komas.run_worker()

    database = komas.json("status", "--json")["database"]
    assert (database["applied_events"], database["parked_events"], database["dead_letters"]) == (6, 0, 0)
    assert database["last_applied"]["event_id"] == "6f1c1a0e-0c55-4d7e-9a57-6d0f5c1b2a04"
    signal = read(komas, lambda: SignalManager.get_by_uid("bot1-20261125-0001"))
    assert signal is not None
    assert (signal.status, signal.exit_reason) == ("closed", "tp1")
    bot = read(komas, lambda: BotManager.get(1))
    assert bot is not None
    assert (bot.is_active, bot.total_signals, bot.total_wins) == (True, 1, 1)
    preset = read(komas, lambda: PresetManager.get(1))
    assert preset is not None
    assert preset.win_rate == 75.5

    # The same file again: every line carries its event_id, so nothing applies twice.
    assert komas("publish", "-f", str(SAMPLE)).exit_code == 0
    komas.run_worker()
    assert komas.json("status", "--json")["database"]["applied_events"] == 6
    again = read(komas, lambda: BotManager.get(1))
    assert again is not None
    assert again.total_signals == 1


def test_sigterm_while_the_worker_starts_is_a_clean_exit(redis_url: str, queue_name: str, tmp_path: Path) -> None:
    """A stop asked for before the worker's own handlers are in place still ends with exit code 0.

    The signal goes right after the first line the command prints, while it imports and starts
    the worker (the interpreter's own start-up, before any of our code, is not covered).
    """
    env = {
        **os.environ,
        "KOMAS_REDIS_URL": redis_url,
        "KOMAS_QUEUE": queue_name,
        "KOMAS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/komas.db",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", "from worker.cli import main; main()", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline().decode()
        assert first.startswith("komas worker:"), first
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, rest.decode()[-2000:]
