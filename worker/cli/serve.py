"""`komas api`: the REST API server."""

from __future__ import annotations

import signal
from types import FrameType

import typer

from worker.cli._common import fail, setup_logging
from worker.cli.run import HOST_OPTION, PORT_OPTION
from worker.config import get_config

#: Seconds an idle keep-alive connection stays open (uvicorn's default, stated here on purpose).
KEEP_ALIVE_S = 5


def api(host: str | None = HOST_OPTION, port: int | None = PORT_OPTION) -> None:
    """Serve the REST API (reads from the database, writes through the worker).

    Example: [bold]KOMAS_API_TOKEN=secret komas api --host 0.0.0.0 --port 8000[/bold]
    """
    import uvicorn

    from worker.api.app import create_app
    from worker.api.auth import check_bind_allowed
    from worker.api.server import with_head_timeout

    setup_logging()
    config = get_config()
    bind_host = host or config.api_host
    bind_port = config.api_port if port is None else port
    try:
        check_bind_allowed(bind_host, config)
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    typer.echo(f"komas api: http://{bind_host}:{bind_port} (docs at /docs)", err=True)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again for the handler
    # that was installed before it: make that one a no-op, so a clean stop exits 0 (`komas up` checks it).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _already_handled)
    uvicorn.run(
        create_app(config),
        host=bind_host,
        port=bind_port,
        log_level=config.log_level.lower(),
        # An idle connection closes after KEEP_ALIVE_S. uvicorn has no deadline for a slow request head
        # or body: the protocol closes a connection whose head is late, the app's BodyTimeout answers
        # 408 to a late body (both KOMAS_API_BODY_TIMEOUT_S).
        timeout_keep_alive=KEEP_ALIVE_S,
        http=with_head_timeout(config.api_body_timeout_s),
    )


def _already_handled(_signum: int, _frame: FrameType | None) -> None:
    """uvicorn has stopped the server by the time it re-raises the signal; nothing is left to do."""
