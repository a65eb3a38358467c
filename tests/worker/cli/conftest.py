"""Fixtures for the `komas` command line: run commands through typer's runner against real services.

Each test gets its own SQLite file and (with `komas`) its own queue on the shared Redis, passed the
way a user passes them: `KOMAS_*` environment variables. `get_config()` is cached per process, so
it is cleared before every command and after every test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from events.wire import JOB_KEY_PREFIX
from worker.cli import app
from worker.config import get_config


@dataclass
class Cli:
    """Runs `komas ARGS...` in-process; an exception becomes a non-zero exit code, as for a user."""

    database_url: str
    runner: CliRunner = field(default_factory=CliRunner)

    @property
    def database_path(self) -> Path:
        database = make_url(self.database_url).database
        assert database
        return Path(database)

    def __call__(self, *args: str) -> Result:
        get_config.cache_clear()  # each command reads the environment afresh, as a new process would
        return self.runner.invoke(app, list(args))

    def json(self, *args: str, expect_exit: int = 0) -> dict[str, Any]:
        """Run a command that prints one JSON object; check its exit code and return the object."""
        result = self(*args)
        assert result.exit_code == expect_exit, result.output
        document = json.loads(result.stdout)
        assert isinstance(document, dict)
        return document


@dataclass(kw_only=True)
class Komas(Cli):
    """A `Cli` with a queue of its own on the real Redis; remembers its jobs so teardown removes them."""

    redis_url: str
    queue: str
    client: redis.Redis
    job_ids: set[str] = field(default_factory=set)

    def __call__(self, *args: str) -> Result:
        self.remember_jobs()
        result = super().__call__(*args)
        self.remember_jobs()
        return result

    def queued_job_ids(self) -> list[str]:
        job_ids = cast(list[bytes], self.client.zrange(self.queue, 0, -1))
        return [job_id.decode() for job_id in job_ids]

    def remember_jobs(self) -> None:
        self.job_ids.update(self.queued_job_ids())

    def run_worker(self) -> Result:
        """`komas worker --burst`: apply everything queued, then exit."""
        result = self("worker", "--burst")
        assert result.exit_code == 0, result.output
        assert self.client.zcard(self.queue) == 0
        return result

    def cleanup(self) -> None:
        self.remember_jobs()
        keys = [self.queue, f"{self.queue}:health-check"]
        for job_id in self.job_ids:
            keys += [f"{JOB_KEY_PREFIX}{job_id}", f"arq:result:{job_id}", f"arq:retry:{job_id}"]
            keys.append(f"arq:in-progress:{job_id}")
        self.client.delete(*keys)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds (no blind sleeps)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.02)


@pytest.fixture
def cli(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """`komas` on a fresh SQLite file, for commands that need no Redis (help, schema, db)."""
    monkeypatch.setenv("KOMAS_DATABASE_URL", sqlite_url)
    yield Cli(database_url=sqlite_url)
    get_config.cache_clear()


@pytest.fixture
def komas(redis_url: str, queue_name: str, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Komas]:
    """`komas` wired to this test's Redis queue and SQLite file through `KOMAS_*` variables."""
    monkeypatch.setenv("KOMAS_REDIS_URL", redis_url)
    monkeypatch.setenv("KOMAS_QUEUE", queue_name)
    monkeypatch.setenv("KOMAS_DATABASE_URL", sqlite_url)
    client = redis.Redis.from_url(redis_url)
    env = Komas(database_url=sqlite_url, redis_url=redis_url, queue=queue_name, client=client)
    try:
        yield env
    finally:
        env.cleanup()
        client.close()
        get_config.cache_clear()
