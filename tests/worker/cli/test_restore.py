"""The restore command: asks the writer lease (real Redis), asks for confirmation, prints the JSON report;
exit 1 with the reason on stderr when it refuses. Run through typer's runner on its own small app (the
lead registers it as `komas ops restore`)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import typer
from typer.testing import CliRunner, Result

from tests.services import free_port
from worker import BotManager, close_db, init_db
from worker.cli.restore import restore_command
from worker.config import get_config
from worker.runtime.lease import WriterLease

app = typer.Typer()
app.command()(restore_command)


def bot_names(database: Path) -> list[str]:
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        return [name for (name,) in connection.execute("SELECT name FROM bots ORDER BY id")]


def make_database(url: str, *bots: str) -> Path:
    async def run() -> None:
        init_db(url)
        try:
            for name in bots:
                await BotManager.create(name=name, symbol="BTCUSDT", timeframe="1h")
        finally:
            await close_db()

    asyncio.run(run())
    return Path(url.removeprefix("sqlite+aiosqlite:///"))


class Restore:
    def __init__(self, database: Path, source: Path) -> None:
        self.database = database
        self.source = source
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Result:
        get_config.cache_clear()
        return self.runner.invoke(app, [str(self.source), *args], input=input)


@pytest.fixture
def run(sqlite_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Restore]:
    monkeypatch.setenv("KOMAS_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("KOMAS_REDIS_URL", redis_url)
    database = make_database(sqlite_url, "current")
    source = make_database(f"sqlite+aiosqlite:///{tmp_path / 'kept' / 'backup.db'}", "restored")
    yield Restore(database, source)
    get_config.cache_clear()


def test_restore_with_yes_prints_the_report(run: Restore) -> None:
    result = run("--yes")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["restored"] == str(run.source)
    assert report["counts"]["bots"] == 1
    assert bot_names(run.database) == ["restored"]
    assert bot_names(Path(report["backup_of_current"]["file"])) == ["current"]


def test_asks_first_and_a_no_changes_nothing(run: Restore) -> None:
    declined = run(input="n\n")
    assert declined.exit_code == 1
    assert "nothing was restored" in declined.stderr
    assert bot_names(run.database) == ["current"]

    accepted = run(input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "Replace the database" in accepted.stdout
    assert bot_names(run.database) == ["restored"]


def test_refused_while_a_worker_holds_the_lease(run: Restore, sqlite_url: str, redis_url: str) -> None:
    async def while_held() -> Result:
        client = aioredis.Redis.from_url(redis_url)
        lease = WriterLease(client, sqlite_url, ttl_s=30)
        try:
            assert await lease.try_acquire()
            return await asyncio.to_thread(run, "--yes")  # the command runs its own event loop
        finally:
            await lease.release()
            await client.delete(lease.token_key)
            await client.aclose()

    result = asyncio.run(while_held())
    assert result.exit_code == 1
    assert "stop it first" in result.stderr
    assert "docker compose stop worker" in result.stderr
    assert bot_names(run.database) == ["current"]


def test_refused_when_redis_cannot_tell_unless_forced(run: Restore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOMAS_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    refused = run("--yes")
    assert refused.exit_code == 1
    assert "cannot tell whether a worker runs" in refused.stderr
    assert "--force" in refused.stderr
    assert bot_names(run.database) == ["current"]

    forced = run("--yes", "--force")
    assert forced.exit_code == 0, forced.output
    assert bot_names(run.database) == ["restored"]


def test_a_refusal_is_one_line_on_stderr_and_exit_1(run: Restore) -> None:
    run.source.write_bytes(b"not a database at all")
    result = run("--yes")
    assert result.exit_code == 1
    assert "not a SQLite database" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert bot_names(run.database) == ["current"]
