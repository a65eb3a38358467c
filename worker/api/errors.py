"""The error policy: every failure we know of becomes a status and a sentence, never a bare 500.

- `ApiError` (raised by our code): its own status (401, 404, 409, 413, 422).
- `WriteQueued`: the worker did not answer in time; 202 with the event and job ids.
- invalid input that got past FastAPI's own validation (an event the catalogue refuses): 422.
- the database or Redis unavailable (locked, not migrated yet, connection refused): 503.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from events.errors import EventValidationError
from worker.api.schemas import Queued

Row = TypeVar("Row")

log = logging.getLogger("komas.api")


class ApiError(Exception):
    """An answer other than success, with the reason for the caller."""

    def __init__(self, status: int, detail: object, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


class WriteQueued(Exception):
    """The command is queued but the worker has not answered within `api_wait_s`."""

    def __init__(self, queued: Queued) -> None:
        super().__init__(f"event {queued.event_id} queued as job {queued.job_id}")
        self.queued = queued


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} does not exist")


async def get_or_404(session: AsyncSession, model: type[Row], key: Any, what: str) -> Row:
    """The row of `model` with this primary key, or a 404 saying that `what` does not exist."""
    row = await session.get(model, key)
    if row is None:
        raise not_found(what)
    return row


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)


async def _queued(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WriteQueued)
    return JSONResponse(exc.queued.model_dump(), status_code=202)


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, EventValidationError):
        return JSONResponse({"detail": exc.errors}, status_code=422)
    assert isinstance(exc, ValidationError)
    detail = [
        {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]} for err in exc.errors(include_url=False)
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    reason = str(getattr(exc, "orig", exc)).splitlines()[0]
    return JSONResponse({"detail": f"database unavailable: {reason}"}, status_code=503, headers={"Retry-After": "1"})


async def _redis_down(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("Redis unavailable: %s", exc)
    return JSONResponse({"detail": f"Redis unavailable: {exc}"}, status_code=503, headers={"Retry-After": "1"})


def install_error_handlers(app: FastAPI) -> None:
    """Map our errors and the infrastructure's to answers (see the module docstring)."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(WriteQueued, _queued)
    app.add_exception_handler(EventValidationError, _invalid)
    app.add_exception_handler(ValidationError, _invalid)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(DBAPIError, _database_down)
    app.add_exception_handler(redis.exceptions.RedisError, _redis_down)
    app.add_exception_handler(ConnectionError, _redis_down)
