"""`komas worker`, `komas api` and `komas up`: running the system."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import typer

from worker.cli._common import fail, setup_logging
from worker.config import get_config

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
HOST_OPTION = typer.Option(None, "--host", help="Interface to listen on (default KOMAS_API_HOST, 127.0.0.1).")
PORT_OPTION = typer.Option(None, "--port", help="Port to listen on (default KOMAS_API_PORT, 8000).")


def worker(
    burst: bool = typer.Option(False, "--burst", help="Drain the queue, then exit (for scripts and tests)."),
) -> None:
    """Run the single writer: take event jobs from the queue and apply them.

    Example: [bold]KOMAS_REDIS_URL=redis://127.0.0.1:6379/0 komas worker[/bold]
    """
    requested: list[int] = []  # a stop asked for while starting (imports take a second)
    previous = {sig: signal.signal(sig, lambda signum, _frame: requested.append(signum)) for sig in STOP_SIGNALS}
    try:
        setup_logging()
        config = get_config()
        typer.echo(f"komas worker: queue {config.queue!r}, database {config.database_url}", err=True)
        from worker.runtime.runner import run_forever

        asyncio.run(run_forever(config, burst=burst, stop_requested=lambda: bool(requested)))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def up(
    host: str | None = HOST_OPTION,
    port: int | None = PORT_OPTION,
    redis_port: int = typer.Option(
        6379, help="Port of the local Redis: used when one answers on 127.0.0.1 there, else an embedded one starts."
    ),
    data_dir: Path = typer.Option(Path("data"), help="Where the embedded Redis keeps its append-only file."),
) -> None:
    """Run the whole system: worker + API, and an embedded Redis when none is configured or answering.

    Ctrl-C stops everything cleanly. Example: [bold]komas up --port 8000[/bold]
    """
    from worker.runtime.embedded_redis import EmbeddedRedis, EmbeddedRedisError, redis_answers, redis_configured

    config = get_config()
    env = dict(os.environ)
    embedded: EmbeddedRedis | None = None
    if redis_configured():
        if not redis_answers(config.redis_url):
            raise fail(f"KOMAS_REDIS_URL={config.redis_url} does not answer")
    elif redis_answers(local_url := f"redis://127.0.0.1:{redis_port}/0"):
        env["KOMAS_REDIS_URL"] = local_url  # the default URL when --redis-port is 6379
    else:
        embedded = EmbeddedRedis(redis_port, data_dir / "redis")
        try:
            embedded.start()
        except EmbeddedRedisError as exc:
            raise fail(f"no Redis configured or answering, and the embedded one failed: {exc}") from None
        env["KOMAS_REDIS_URL"] = embedded.url
        typer.echo(
            f"komas up: no Redis configured or answering; started an embedded one at {embedded.url} "
            f"(append-only, {data_dir / 'redis'})",
            err=True,
        )
    try:
        code = _run_children(env, host, port)
    finally:
        if embedded is not None:
            embedded.stop()
    raise typer.Exit(code)


def _run_children(env: dict[str, str], host: str | None, port: int | None) -> int:
    """Start worker and API as children; on SIGINT/SIGTERM stop both and wait; if one dies, stop the other."""
    base = [sys.executable, "-c", "from worker.cli import main; main()"]
    api_args = ["api"] + (["--host", host] if host else []) + (["--port", str(port)] if port is not None else [])
    children = [subprocess.Popen([*base, "worker"], env=env), subprocess.Popen([*base, *api_args], env=env)]
    requested = False
    signalled: set[int] = set()

    def terminate_all(*, again: bool = False) -> None:
        # Not twice unless asked (a second Ctrl-C means "now"): an extra SIGTERM could land while a child
        # is already exiting, after Python restored the default handlers, and kill it mid clean stop.
        for child in children:
            if child.poll() is None and (again or child.pid not in signalled):
                signalled.add(child.pid)
                child.send_signal(signal.SIGTERM)

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal requested
        again, requested = requested, True
        terminate_all(again=again)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while all(child.poll() is None for child in children):
            try:
                children[0].wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
        terminate_all()  # one ended (by a signal or by itself): the system is not whole, stop the other
        codes = [child.wait() for child in children]
        typer.echo(f"komas up: worker exited with {codes[0]}, api exited with {codes[1]}", err=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    clean = (0, -signal.SIGTERM, -signal.SIGINT)
    if requested and all(code in clean for code in codes):
        return 0
    return next((abs(code) for code in codes if code != 0), 1)
