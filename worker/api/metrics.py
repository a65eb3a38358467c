"""The API's Prometheus metrics, served at `GET /metrics` (read rules: the token when reads need it).

Requests by route *template* (`/api/db/bots/{bot_id}`, never the id itself), method and status, and
their duration. Pure ASGI, so it wraps every answer, refusals and errors included.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.api.auth import ReadAuth

REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "komas_api_requests", "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"], registry=REGISTRY,
)  # fmt: skip
DURATION = Histogram(
    "komas_api_request_duration_seconds", "Time to answer a request, by route template.", ["route"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=REGISTRY,
)  # fmt: skip


class RequestMetrics:
    """Counts and times every HTTP request by the route that matched (`unmatched` when none did)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            REQUESTS.labels(route, scope["method"], str(status)).inc()
            DURATION.labels(route).observe(time.monotonic() - started)


router = APIRouter(tags=["status"], dependencies=[ReadAuth])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics() -> Response:
    """The API's metrics in Prometheus' text format (the worker serves its own on `KOMAS_METRICS_PORT`)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
