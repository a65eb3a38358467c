"""`komas api` as users run it: uvicorn on a real socket, requests written byte by byte.

What only the real server shows: a slow request body is cut off, the Host rule holds on the wire,
and a configuration with an empty token does not start.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.api.conftest import migrate
from tests.services import free_port

KOMAS = [sys.executable, "-c", "from worker.cli import main; main()"]
BODY_TIMEOUT_S = 1.0


def komas_env(**settings: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("KOMAS_")}
    return env | {f"KOMAS_{name.upper()}": value for name, value in settings.items()}


@contextlib.contextmanager
def komas_api(env: dict[str, str], ready_path: str = "/health") -> Iterator[int]:
    """`komas api` on a free port with `env`, until the block ends; yields the port once `ready_path` is 200."""
    port = free_port()
    process = subprocess.Popen([*KOMAS, "api", "--port", str(port)], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "komas api did not become ready"
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[int]:
    """`komas api` without a token on a free port, with a 1 s body timeout; yields the port."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('server')}/komas.db"
    queue_name = f"komas:test:{uuid.uuid4().hex}"
    asyncio.run(migrate(url))
    env = komas_env(
        database_url=url,
        redis_url=redis_url,
        queue=queue_name,
        api_body_timeout_s=str(BODY_TIMEOUT_S),
        log_level="WARNING",
    )
    try:
        with komas_api(env) as port:
            yield port
    finally:
        client = redis.Redis.from_url(redis_url)
        try:  # what the 202 queued, and its idempotency record
            job_ids = [job_id.decode() for job_id in client.zrange(queue_name, 0, -1)]  # type: ignore[union-attr]
            client.delete(queue_name, *(f"arq:job:{job_id}" for job_id in job_ids))
            client.delete(queue_name, *client.scan_iter(match=f"{queue_name}:api:*"))
        finally:
            client.close()


def exchange(port: int, chunks: list[bytes], pause_s: float = 0.0, read_timeout: float = 10.0) -> tuple[bytes, float]:
    """Send `chunks` (pausing between them), then read until the server closes; the bytes and the seconds taken."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:
                break  # the server closed on us: read what it said
            time.sleep(pause_s)
        received = b""
        while data := sock.recv(65536):
            received += data
    return received, time.monotonic() - started


HEAD = b"POST /api/db/settings HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def test_a_body_that_never_comes_is_cut_off(server: int) -> None:
    """Headers promise 100 bytes, one arrives: 408 after the timeout, and the connection is closed."""
    answer, took = exchange(server, [HEAD + b"Content-Length: 100\r\n\r\n{"])
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"KOMAS_API_BODY_TIMEOUT_S" in answer
    assert BODY_TIMEOUT_S <= took < BODY_TIMEOUT_S + 3


def test_a_body_dripping_in_is_cut_off_too(server: int) -> None:
    """One byte every 0.2 s keeps the connection busy but not the request alive: the deadline is for the body."""
    drip = [b"{", b'"', b"k", b'"', b":", b" "] * 4
    answer, took = exchange(
        server,
        [HEAD + b"Transfer-Encoding: chunked\r\n\r\n", *(b"1\r\n" + byte + b"\r\n" for byte in drip)],
        pause_s=0.2,
    )
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert took < BODY_TIMEOUT_S + 3 + 0.2 * len(drip)


@pytest.mark.parametrize(
    ("chunks", "pause_s"),
    [
        ([], 0.0),  # a connection that never says anything
        ([b"POST /api/db/settings HTTP/1.1\r\nHost: 127.0.0.1\r\n"], 0.0),  # headers that never end
        ([bytes([byte]) for byte in HEAD], 0.1),  # headers one byte every 0.1 s
    ],
    ids=["silent", "unfinished-head", "dripping-head"],
)
def test_a_slow_request_head_is_cut_off(server: int, chunks: list[bytes], pause_s: float) -> None:
    """The slow loris uvicorn lets through: the connection is closed once the head is late."""
    answer, took = exchange(server, chunks, pause_s=pause_s)
    assert answer == b""
    assert BODY_TIMEOUT_S <= took < BODY_TIMEOUT_S + 3


def test_a_keep_alive_connection_serves_requests_one_after_another(server: int) -> None:
    """The head deadline starts again after each response; a prompt client is never cut."""
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    try:
        sockets = []
        for _ in range(3):
            connection.request("GET", "/api/db/presets")
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b"[]")
            sockets.append(connection.sock)
            time.sleep(BODY_TIMEOUT_S * 0.6)  # more than the deadline in all, less between requests
        assert sockets[0] is not None
        assert all(sock is sockets[0] for sock in sockets)  # the same connection throughout
    finally:
        connection.close()


def test_a_prompt_body_is_answered(server: int) -> None:
    body = b'{"key": "k", "value": 1}'
    answer, _ = exchange(server, [HEAD + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body])
    assert answer.startswith(b"HTTP/1.1 202"), answer  # no worker here: queued


def test_the_host_rule_holds_on_the_wire(server: int) -> None:
    request = b"GET /api/db/presets HTTP/1.1\r\nHost: evil.example:%d\r\nConnection: close\r\n\r\n" % server
    answer, _ = exchange(server, [request])
    assert answer.startswith(b"HTTP/1.1 421"), answer
    request = b"GET /api/db/presets HTTP/1.1\r\nHost: localhost:%d\r\nConnection: close\r\n\r\n" % server
    assert exchange(server, [request])[0].startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("token", ["", "   ", "\t"])
def test_an_empty_token_is_a_configuration_error(token: str, tmp_path: Path) -> None:
    env = komas_env(api_token=token, database_url=f"sqlite+aiosqlite:///{tmp_path}/komas.db")
    result = subprocess.run([*KOMAS, "api", "--port", str(free_port())], env=env, capture_output=True, timeout=60)
    assert result.returncode == 2
    assert b"KOMAS_API_TOKEN" in result.stderr
    assert b"empty" in result.stderr
