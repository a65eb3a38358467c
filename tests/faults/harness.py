"""The fault suite's machinery: a private Redis, the worker as a process, a stream, the final checks.

Every fault test builds the same picture: its own `redis-server` (append-only, so a restart keeps
acknowledged jobs), a fresh SQLite file, one `komas worker` process that the test kills and
restarts at will, a stream of valid events whose outcome is known in advance, and at the end the
same checks: no event lost, none applied twice, bot stats equal to their closed signals, and
`PRAGMA integrity_check` says `ok`.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from events import BacktestFinished, BaseEvent, BotToggled, SignalClosed, SignalCreated, SyncPublisher
from events.errors import PublishError
from events.wire import JOB_KEY_PREFIX
from tests.services import free_port

REDIS_SERVER = shutil.which("redis-server")
#: Runs `komas worker` exactly as the console script does, without depending on the script's location.
KOMAS_MAIN = "from worker.cli import main; main()"
#: A worker whose SQLite connections obey a page limit read from a file (the disk-full test).
PAGE_LIMITED_MAIN = str(Path(__file__).with_name("page_limited_worker.py"))


def require_redis_server() -> str:
    """Skip (visibly) where no `redis-server` binary is installed."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not on PATH: the fault tests run their own Redis")
    return REDIS_SERVER


def wait_until(condition: Any, deadline: float, what: str, interval: float = 0.05) -> None:
    """Poll `condition()` until it is true; fail naming `what` once `deadline` (monotonic) has passed."""
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


# --- Redis -----------------------------------------------------------------------------------------


class RedisServer:
    """A `redis-server` of one test's own on a free port, append-only with fsync on every write.

    `kill()` is `kill -9`; `start()` again reuses port and directory, so the append-only file
    brings back every acknowledged job. The machine's shared Redis is never touched.
    """

    def __init__(self, directory: Path) -> None:
        self.binary = require_redis_server()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log = open(directory / "redis.log", "ab")  # noqa: SIM115 - closed in stop()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=2)

    def start(self, timeout: float = 10.0) -> None:
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--daemonize", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self.answers, time.monotonic() + timeout, f"redis-server on port {self.port}")

    def answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.process.returncode}; see {self._log.name}")
        try:
            with closing(self.client()) as client:
                return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def kill(self) -> None:
        """`kill -9`: no shutdown, no final save; only what the append-only file holds survives."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self, down_for: float = 0.0) -> None:
        self.kill()
        time.sleep(down_for)
        self.start()

    def stop(self) -> None:
        self.kill()
        self._log.close()


# --- the worker ------------------------------------------------------------------------------------


class WorkerProcess:
    """`komas worker` as a child process of the test, with its own environment and log file."""

    def __init__(self, env: dict[str, str], log_path: Path, *, main: str = KOMAS_MAIN) -> None:
        self.env = env
        self.log_path = log_path
        self.main = main
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.exit_codes: list[int] = []

    @property
    def queue(self) -> str:
        return self.env["KOMAS_QUEUE"]

    def start(self, **extra_env: str) -> None:
        """Start a fresh worker process; `extra_env` (e.g. `KOMAS_FAILPOINTS`) applies to this run only."""
        assert not self.alive, "the worker is already running"
        env = {**self.env, **extra_env}
        if self.main == KOMAS_MAIN:
            command = [sys.executable, "-c", self.main, "worker"]
        else:
            command = [sys.executable, self.main, "worker"]
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start {self.starts} {extra_env} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.log_path.parent, start_new_session=True
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def reap(self) -> int | None:
        """The exit code if the process ended by itself (a failpoint), remembering it; None while alive."""
        if self.process is None or self.process.poll() is None:
            return None
        code = self.process.returncode
        self.exit_codes.append(code)
        self.process = None
        return code

    def wait_ready(self, redis_server: RedisServer, timeout: float = 30.0) -> bool:
        """Wait until this run of the worker polls the queue (arq writes its health-check key then).

        False when the process ended first (a failpoint may fire on the first job, before the key).
        """
        key = self.queue + ":health-check"
        with closing(redis_server.client()) as client:
            client.delete(key)

            def ready() -> bool:
                return not self.alive or bool(client.exists(key))

            wait_until(ready, time.monotonic() + timeout, "the worker to poll its queue")
        return self.alive

    def kill(self) -> None:
        """`kill -9`: the running jobs' transactions are cut short and their locks left to expire."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
            self.exit_codes.append(self.process.wait(timeout=10))
            self.process = None

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM: the worker finishes its running jobs and exits 0."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self.exit_codes.append(code)
        self.process = None
        return code

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def worker_env(db_path: Path, redis_url: str, queue: str, **settings: str | int) -> dict[str, str]:
    """The worker's environment: this test's database, Redis and queue, short locks and lease, no stray KOMAS_*."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("KOMAS_")}
    env.update(
        {
            "KOMAS_DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
            "KOMAS_REDIS_URL": redis_url,
            "KOMAS_QUEUE": queue,
            "KOMAS_LOCK_TTL_S": "3",
            "KOMAS_WRITER_LEASE_TTL_S": "3",  # a killed worker's successor waits no longer than its jobs' locks
            "KOMAS_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({f"KOMAS_{name.upper()}": str(value) for name, value in settings.items()})
    return env


# --- the database ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """Bots (id → position size) and presets created before the worker starts."""

    bots: dict[int, float]
    presets: list[int]


def seed_database(db_path: Path, position_sizes: Sequence[float] = (100.0, 40.0, 250.0), presets: int = 2) -> Seed:
    """Create the schema, bots and presets the stream refers to (the worker is not running yet)."""
    from worker import BotManager, PresetManager, close_db, init_db

    async def run() -> Seed:
        database = init_db(f"sqlite+aiosqlite:///{db_path}")
        try:
            await database.ensure_schema()
            bots = {}
            for n, size in enumerate(position_sizes):
                bot = await BotManager.create(name=f"bot{n}", symbol="BTCUSDT", timeframe="15m", position_size=size)
                bots[bot.id] = size
            preset_ids = [(await PresetManager.create(name=f"preset{n}")).id for n in range(presets)]
            return Seed(bots=bots, presets=preset_ids)
        finally:
            await close_db()

    return asyncio.run(run())


@contextmanager
def connect(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection for the test's reads (query_only: the worker is the only writer)."""
    connection = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    try:
        connection.execute("PRAGMA query_only=ON")
        yield connection
    finally:
        connection.close()


def column(db_path: Path, sql: str, *args: Any) -> list[Any]:
    with connect(db_path) as db:
        return [row[0] for row in db.execute(sql, args)]


# --- the stream ------------------------------------------------------------------------------------


@dataclass
class Expected:
    """What the database must say once every event of a stream is applied, whatever the order."""

    bots: dict[int, float]
    #: signal uid → (bot id, pnl amount when closed, else None)
    signals: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    backtests: set[str] = field(default_factory=set)
    #: bot id → the values its toggles set (with reordering, any of them may be the last applied)
    toggles: dict[int, set[bool]] = field(default_factory=dict)


class StreamBuilder:
    """Mixed valid events (creates, closes, backtests, toggles) and the state they lead to."""

    def __init__(self, seed: Seed, rng: random.Random, prefix: str | None = None) -> None:
        self.seed = seed
        self.rng = rng
        self.prefix = prefix or uuid.uuid4().hex[:8]
        self.expected = Expected(bots=dict(seed.bots))
        self.wins: dict[int, list[float]] = {bot_id: [0, 0, 0, 0.0] for bot_id in seed.bots}
        self._open: list[str] = []
        self._count = 0

    @property
    def open_uids(self) -> list[str]:
        """Signals created here and not closed yet."""
        return list(self._open)

    def created(self, bot_id: int | None = None) -> SignalCreated:
        bot_id = bot_id if bot_id is not None else self.rng.choice(list(self.seed.bots))
        self._count += 1
        uid = f"{self.prefix}:{self._count}"
        self.expected.signals[uid] = (bot_id, None)
        self._open.append(uid)
        return SignalCreated(
            signal_uid=uid,
            bot_id=bot_id,
            symbol="BTCUSDT",
            timeframe="15m",
            direction=self.rng.choice(("long", "short")),
            entry_price=round(self.rng.uniform(10, 1000), 4),
            source=f"bot:{bot_id}",
        )

    def closed(self, uid: str | None = None) -> SignalClosed:
        """Close an open signal (a random one unless named); its create must have been built here."""
        if uid is None:
            uid = self._open.pop(self.rng.randrange(len(self._open)))
        else:
            self._open.remove(uid)
        bot_id, _ = self.expected.signals[uid]
        pnl = self.rng.choice((0.0, round(self.rng.uniform(-9, 9), 3)))
        amount = round(self.rng.uniform(-30, 30), 2) if self.rng.random() < 0.3 else None
        effective = amount if amount is not None else self.seed.bots[bot_id] * pnl / 100.0
        self.expected.signals[uid] = (bot_id, effective)
        tally = self.wins[bot_id]
        tally[0] += 1
        tally[1 if pnl > 0 else 2] += 1
        tally[3] += effective
        return SignalClosed(
            signal_uid=uid,
            exit_price=100.0,
            exit_reason="tp1" if pnl > 0 else "sl",
            pnl_percent=pnl,
            pnl_amount=amount,
        )

    def backtest(self) -> BacktestFinished:
        event = BacktestFinished(
            preset_id=self.rng.choice(self.seed.presets),
            symbol="ETHUSDT",
            timeframe="1h",
            win_rate=round(self.rng.uniform(0, 100), 2),
            profit_factor=round(self.rng.uniform(0, 3), 3),
            total_profit_percent=round(self.rng.uniform(-50, 50), 2),
            max_drawdown_percent=round(self.rng.uniform(0, 40), 2),
            sharpe_ratio=round(self.rng.uniform(-2, 3), 3),
            total_trades=self.rng.randrange(500),
            params={"period": self.rng.randrange(5, 50)},
            source="optimizer",
        )
        self.expected.backtests.add(str(event.event_id))
        return event

    def toggled(self) -> BotToggled:
        bot_id = self.rng.choice(list(self.seed.bots))
        active = self.rng.random() < 0.5
        self.expected.toggles.setdefault(bot_id, set()).add(active)
        return BotToggled(bot_id=bot_id, active=active, source="api")

    def mixed(self, count: int, *, close_all: bool = True) -> list[BaseEvent]:
        """`count` events in a plausible order: a close always after its create."""
        events: list[BaseEvent] = []
        while len(events) < count:
            roll = self.rng.random()
            if roll < 0.45 or not self._open:
                events.append(self.created())
            elif roll < 0.85:
                events.append(self.closed())
            elif roll < 0.95:
                events.append(self.backtest())
            else:
                events.append(self.toggled())
        if close_all:
            events += [self.closed(uid) for uid in list(self._open)]
        return events

    def expected_stats(self) -> dict[int, tuple[int, int, int, float]]:
        return {bot_id: (int(t[0]), int(t[1]), int(t[2]), t[3]) for bot_id, t in self.wins.items()}


def event_ids(events: Iterable[BaseEvent]) -> list[str]:
    return [str(event.event_id) for event in events]


def random_chunks(events: Sequence[Any], rng: random.Random, low: int = 1, high: int = 100) -> list[list[Any]]:
    """Split a stream into jobs of random sizes, order kept."""
    chunks: list[list[Any]] = []
    start = 0
    while start < len(events):
        size = rng.randint(low, high)
        chunks.append(list(events[start : start + size]))
        start += size
    return chunks


def publish(redis_url: str, queue: str, jobs: Iterable[Sequence[BaseEvent]], retry_until: float | None = None) -> int:
    """Publish each chunk as one job; with `retry_until`, a job Redis did not take is published again."""
    published = 0
    with SyncPublisher.connect(redis_url, queue=queue, timeout=2.0) as publisher:
        for job in jobs:
            while True:
                try:
                    publisher.publish_many(job)
                    published += 1
                    break
                except PublishError:
                    if retry_until is None or time.monotonic() > retry_until:
                        raise
                    time.sleep(0.1)
    return published


def enqueue_raw(client: redis.Redis, queue: str, body: bytes) -> str:
    """Write a job body as a producer in another language would (SET + ZADD); returns the job id."""
    job_id = uuid.uuid4().hex
    with client.pipeline(transaction=True) as pipe:
        pipe.set(JOB_KEY_PREFIX + job_id, body, px=3_600_000)
        pipe.zadd(queue, {job_id: int(time.time() * 1000)})
        pipe.execute()
    return job_id


# --- draining and the final checks -----------------------------------------------------------------


def accounted_ids(db_path: Path) -> set[str]:
    """Event ids applied or dead-lettered so far."""
    with connect(db_path) as db:
        applied = {row[0] for row in db.execute("SELECT event_id FROM processed_events")}
        dead = {row[0] for row in db.execute("SELECT event_id FROM dead_letters WHERE event_id IS NOT NULL")}
    return applied | dead


def drain(
    db_path: Path,
    redis_server: RedisServer,
    queue: str,
    ids: Iterable[str],
    deadline: float,
    worker: WorkerProcess | None = None,
) -> None:
    """Poll until the queue is empty, nothing is parked and every id is applied or dead-lettered."""
    wanted = set(ids)
    missing: set[str] = set()
    with closing(redis_server.client()) as client:

        def done() -> bool:
            nonlocal missing
            if worker is not None and not worker.alive:
                code = worker.reap()
                raise AssertionError(f"the worker died (exit {code}) while draining:\n{worker.log_tail()}")
            if client.zcard(queue):
                return False
            missing = wanted - accounted_ids(db_path)
            parked = column(db_path, "SELECT count(*) FROM parked_events")[0]
            return not missing and not parked

        try:
            wait_until(done, deadline, "the backlog to drain", interval=0.2)
        except AssertionError as exc:
            tail = worker.log_tail() if worker is not None else ""
            state = describe_queue(client, queue)
            raise AssertionError(f"{exc}: {len(missing)} ids missing, {state}\n{tail}") from None


def describe_queue(client: redis.Redis, queue: str, sample: int = 5) -> str:
    """What is left in a queue and why it may not run: deferred, locked, or without its job key."""
    now_ms = time.time() * 1000
    entries: list[tuple[bytes, float]] = client.zrange(queue, 0, sample - 1, withscores=True)  # type: ignore[assignment]
    lines = [f"{client.zcard(queue)} jobs queued; first ones:"]
    for raw_id, score in entries:
        job_id = raw_id.decode()
        has_body = bool(client.exists(JOB_KEY_PREFIX + job_id))
        lines.append(
            f"  {job_id}: due in {(score - now_ms) / 1000:.1f}s, job key {has_body}, "
            f"lock ttl {client.pttl('arq:in-progress:' + job_id)}ms, tries {client.get('arq:retry:' + job_id)!r}"
        )
    return "\n".join(lines)


def check_invariants(
    db_path: Path, published_ids: Iterable[str], expected_dead: Iterable[str] = (), *, raw_dead_letters: int = 0
) -> None:
    """The checks every fault test ends with.

    No event lost (each published id applied or dead-lettered, and only the expected ones
    dead-lettered; `raw_dead_letters` counts poison jobs, stored without an event id), none applied
    twice (one `processed_events` row per id), bot stats equal to the sum over their closed signals,
    nothing left parked, and `PRAGMA integrity_check` is `ok`.
    """
    published = set(published_ids)
    dead_expected = set(expected_dead)
    with connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = [row[0] for row in db.execute("SELECT event_id FROM processed_events")]
        assert len(rows) == len(set(rows)), "an event id was recorded twice"
        applied = set(rows)
        letters = list(db.execute("SELECT event_id, reason FROM dead_letters WHERE replayed_at IS NULL"))
        dead = {event_id for event_id, _ in letters if event_id is not None}
        assert sum(1 for event_id, _ in letters if event_id is None) == raw_dead_letters, letters
        parked = db.execute("SELECT event_id, reason FROM parked_events").fetchall()
        stats = {row[0]: row[1:] for row in db.execute(
            "SELECT id, total_signals, total_wins, total_losses, total_profit FROM bots"
        )}  # fmt: skip
        from_signals = {row[0]: row[1:] for row in db.execute(
            "SELECT bot_id, count(*), sum(pnl_percent > 0), sum(pnl_percent <= 0), coalesce(sum(pnl_amount), 0) "
            "FROM signals WHERE status = 'closed' GROUP BY bot_id"
        )}  # fmt: skip
    lost = published - applied - dead
    assert not lost, f"{len(lost)} events lost, e.g. {sorted(lost)[:5]}"
    unexpected = {event_id for event_id, reason in letters if event_id in dead - dead_expected}
    assert dead & published == dead_expected & published, f"unexpected dead letters: {unexpected}, {letters[:5]}"
    assert not (applied & dead), f"events both applied and dead-lettered: {sorted(applied & dead)[:5]}"
    assert parked == [], f"events left parked: {parked[:5]}"
    for bot_id, (signals, wins, losses, profit) in stats.items():
        n, w, lo, p = from_signals.get(bot_id, (0, 0, 0, 0.0))
        assert (signals, wins, losses) == (n, w, lo), f"bot {bot_id}: stats {stats[bot_id]} != signals {n, w, lo}"
        assert profit == p, f"bot {bot_id}: profit {profit} != {p} (units of 10^-8: exactly the sum)"


def check_outcome(db_path: Path, builder: StreamBuilder) -> None:
    """The database says exactly what the stream leads to: every signal, every stat, every backtest."""
    expected = builder.expected
    with connect(db_path) as db:
        signals = {row[0]: row[1:] for row in db.execute(
            "SELECT uid, bot_id, status, pnl_amount / 100000000.0 FROM signals"  # amounts: units of 10^-8
        )}  # fmt: skip
        backtests = {row[0] for row in db.execute("SELECT event_id FROM backtest_results")}
        stats = {row[0]: row[1:] for row in db.execute(
            "SELECT id, total_signals, total_wins, total_losses, total_profit / 100000000.0, is_active FROM bots"
        )}  # fmt: skip
    ours = {uid: row for uid, row in signals.items() if uid.startswith(builder.prefix + ":")}
    assert set(ours) == set(expected.signals), "signals missing or extra"
    for uid, (bot_id, amount) in expected.signals.items():
        got_bot, status, got_amount = ours[uid]
        assert got_bot == bot_id
        if amount is None:
            assert status == "active", uid
        else:
            assert status == "closed", uid
            assert got_amount == pytest.approx(amount, abs=1e-8), uid  # rounded to 8 places once
    assert expected.backtests <= backtests
    for bot_id, (n, wins, losses, profit) in builder.expected_stats().items():
        got = stats[bot_id]
        assert got[:3] == (n, wins, losses), f"bot {bot_id}: {got[:3]} != {(n, wins, losses)}"
        assert got[3] == pytest.approx(profit, abs=1e-6)
        if bot_id in expected.toggles:
            assert bool(got[4]) in expected.toggles[bot_id]


def check_no_partial(db_path: Path, prefix: str) -> None:
    """In one snapshot, effects and recorded ids agree: no event half-applied, no id without its effect."""
    with connect(db_path) as db:
        db.execute("BEGIN")
        try:
            recorded = dict(db.execute("SELECT event_type, count(*) FROM processed_events GROUP BY event_type"))
            signals = db.execute("SELECT count(*) FROM signals WHERE uid LIKE ?", (prefix + ":%",)).fetchone()[0]
            closed = db.execute(
                "SELECT count(*) FROM signals WHERE status = 'closed' AND uid LIKE ?", (prefix + ":%",)
            ).fetchone()[0]
            backtests = {row[0] for row in db.execute("SELECT event_id FROM backtest_results")}
            query = "SELECT event_id FROM processed_events WHERE event_type = 'backtest.finished'"
            backtest_ids = {row[0] for row in db.execute(query)}
        finally:
            db.execute("ROLLBACK")
    assert signals == recorded.get("signal.created", 0), (signals, recorded)
    assert closed == recorded.get("signal.closed", 0), (closed, recorded)
    assert backtests == backtest_ids


# --- one test's rig --------------------------------------------------------------------------------


@dataclass
class Rig:
    """One test's private Redis, database file, queue and worker processes (all cleaned up by the fixture)."""

    directory: Path
    redis: RedisServer
    db_path: Path
    queue: str
    seed: Seed
    workers: list[WorkerProcess] = field(default_factory=list)

    def worker(self, *, main: str = KOMAS_MAIN, **settings: str | int) -> WorkerProcess:
        """A worker process on this rig (not started); `settings` become `KOMAS_<NAME>` variables."""
        env = worker_env(self.db_path, self.redis.url, self.queue, **settings)
        process = WorkerProcess(env, self.directory / f"worker{len(self.workers)}.log", main=main)
        self.workers.append(process)
        return process

    def builder(self, seed: int) -> StreamBuilder:
        return StreamBuilder(self.seed, random.Random(seed))

    def publish(self, jobs: Iterable[Sequence[BaseEvent]], retry_until: float | None = None) -> int:
        return publish(self.redis.url, self.queue, jobs, retry_until)

    def drain(self, ids: Iterable[str], timeout: float, worker: WorkerProcess | None = None) -> None:
        drain(self.db_path, self.redis, self.queue, ids, time.monotonic() + timeout, worker)

    def close(self) -> None:
        for process in self.workers:
            process.kill()
        self.redis.stop()
