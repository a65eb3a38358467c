"""`create_app(config)`: the FastAPI application, its lifespan, middleware and error policy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from worker.api.errors import install_error_handlers
from worker.api.limits import BodySizeLimit, BodyTimeout
from worker.api.metrics import RequestMetrics
from worker.api.metrics import router as metrics_router
from worker.api.render import SafeJSONResponse
from worker.api.resources import Resources
from worker.api.routes import ROUTERS
from worker.api.security import RequestGuard
from worker.config import Config

DESCRIPTION = """\
Reads come straight from the database (read-only connection). Writes are command events: the API
queues one for the worker (the only writer) and waits up to `KOMAS_API_WAIT_S` for its answer;
without an answer in time it says **202** with the event ids, and the write applies when a worker runs.
Send an `Idempotency-Key` header with a write to retry it safely: the same key applies once and gets
the first answer back. A 503 from a write says whether it may still apply and which key retries it.

Writes need `Authorization: Bearer <KOMAS_API_TOKEN>` when a token is configured (reads too with
`KOMAS_API_TOKEN_READS=true`); without one, only loopback `Host`s are served and writes from another
`Origin` are refused. A write's body must be `application/json`. Bodies over `KOMAS_API_MAX_BODY_BYTES`
get 413, and so do events over `KOMAS_MAX_EVENT_BYTES`.
"""


def create_app(config: Config) -> FastAPI:
    """A new application for `config`; resources open in its lifespan, so building it costs nothing."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = Resources.open(config)
        app.state.resources = resources
        try:
            yield
        finally:
            await resources.close()

    # FastAPIOffline: FastAPI with /docs and /redoc assets served from the package, not from a CDN.
    app = FastAPIOffline(
        static_url="/static/docs",
        redoc_url=None,  # ReDoc fetches its logo from a CDN; /docs (Swagger UI) needs nothing from outside
        title="Komas persistence core",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=SafeJSONResponse,
    )
    app.state.config = config
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(metrics_router)
    install_error_handlers(app)
    # The last added runs first: the guard refuses before any body is read, then size, then time.
    app.add_middleware(BodyTimeout, timeout_s=config.api_body_timeout_s)
    app.add_middleware(BodySizeLimit, max_bytes=config.api_max_body_bytes)
    app.add_middleware(RequestGuard, token_configured=config.api_token is not None)
    app.add_middleware(RequestMetrics)  # outermost: counts every answer, refusals included
    return app
