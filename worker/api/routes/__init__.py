"""One router per resource; `ROUTERS` is what `create_app` mounts."""

from fastapi import APIRouter

from worker.api.routes import (
    bots,
    cache,
    dead_letters,
    events,
    health,
    info,
    ops,
    presets,
    settings,
    signals,
    status,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    info.router,
    settings.router,
    presets.router,
    cache.router,
    bots.router,
    signals.router,
    dead_letters.router,
    events.router,
    ops.router,
    status.router,
)
