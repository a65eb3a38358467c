"""The error policy: every failure we know of becomes a status and a sentence, never a bare 500.

- `ApiError` (raised by our code): its own status (401, 404, 409, 413, 422).
- `WriteQueued`: the write is queued but not answered yet; 202 with the event and job ids.
- `WriteNotConfirmed`: Redis failed during a write; 503 saying whether the write may still apply and
  which `Idempotency-Key` retries it safely.
- invalid input (FastAPI's own validation, or an event the catalogue refuses): 422. The offending
  `input` is echoed made encodable (`worker.api.render`): NaN, infinity or a lone surrogate in a
  body can never turn a 422 into a 500.
- the database or Redis unavailable (locked, not migrated yet, connection refused): 503.

Every answer is a `SafeJSONResponse`, which cannot fail to encode.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from events.errors import EventValidationError
from worker.api.render import SafeJSONResponse, encodable
from worker.api.schemas import Queued, Unconfirmed, WriteRequest

Row = TypeVar("Row")

log = logging.getLogger("komas.api")


class ApiError(Exception):
    """An answer other than success, with the reason for the caller."""

    def __init__(self, status: int, detail: object, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


#: What a lost or refused Redis connection raises (redis-py wraps most, not all, socket errors).
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, ConnectionError, OSError, TimeoutError)


class WriteQueued(Exception):
    """The command is queued but the worker has not answered within `api_wait_s`."""

    def __init__(self, queued: Queued) -> None:
        super().__init__(f"events {queued.event_ids} queued as jobs {queued.job_ids}")
        self.queued = queued


class WriteNotConfirmed(Exception):
    """Redis failed during a write. `queued`: whether Redis had acknowledged the job before it failed."""

    def __init__(
        self, write: WriteRequest, event_ids: list[str], *, may_apply: bool, reason: object, queued: bool
    ) -> None:
        super().__init__(f"Redis failed during write {write.event_id}: {reason}")
        self.write = write
        self.event_ids = event_ids
        self.may_apply = may_apply
        self.reason = reason
        self.queued = queued

    def body(self) -> Unconfirmed:
        if self.may_apply:
            what = (
                "the write may still apply (Redis may have queued it before failing)"
                if not self.queued
                else "the write is queued and applies when a worker runs"
            )
        else:
            what = "nothing was queued"
        return Unconfirmed(
            detail=f"Redis unavailable ({type(self.reason).__name__}: {self.reason}): {what}. "
            f"Retry with the header Idempotency-Key: {self.write.key}; it applies at most once.",
            may_apply=self.may_apply,
            event_ids=self.event_ids,
            idempotency_key=self.write.key,
        )


class Replay(Exception):
    """A retried write whose first answer is kept: `answer` is given back as it was."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__("first answer replayed")
        self.answer = answer


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} does not exist")


async def get_or_404(session: AsyncSession, model: type[Row], key: Any, what: str) -> Row:
    """The row of `model` with this primary key, or a 404 saying that `what` does not exist."""
    row = await session.get(model, key)
    if row is None:
        raise not_found(what)
    return row


def error_response(exc: ApiError) -> SafeJSONResponse:
    return SafeJSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)


async def _api_error(_request: Request, exc: Exception) -> SafeJSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _queued(_request: Request, exc: Exception) -> SafeJSONResponse:
    assert isinstance(exc, WriteQueued)
    return SafeJSONResponse(exc.queued.model_dump(), status_code=202)


async def _not_confirmed(_request: Request, exc: Exception) -> SafeJSONResponse:
    assert isinstance(exc, WriteNotConfirmed)
    log.warning("%s", exc)
    return SafeJSONResponse(exc.body().model_dump(), status_code=503, headers={"Retry-After": "1"})


def _error_entry(err: Any) -> dict[str, Any]:
    """One validation error: where, what and why, with the input echoed made encodable."""
    entry = {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
    if "input" in err:
        entry["input"] = encodable(err["input"])
    return entry


async def _invalid(_request: Request, exc: Exception) -> SafeJSONResponse:
    if isinstance(exc, EventValidationError):
        return SafeJSONResponse({"detail": exc.errors}, status_code=422)
    if isinstance(exc, RequestValidationError):
        errors: Any = exc.errors()
    else:
        assert isinstance(exc, ValidationError)
        errors = exc.errors(include_url=False, include_input=False)
    return SafeJSONResponse({"detail": [_error_entry(err) for err in errors]}, status_code=422)


async def _database_down(_request: Request, exc: Exception) -> SafeJSONResponse:
    log.warning("database unavailable: %s", exc)
    reason = str(getattr(exc, "orig", exc)).splitlines()[0]
    return SafeJSONResponse(
        {"detail": f"database unavailable: {reason}"}, status_code=503, headers={"Retry-After": "1"}
    )


async def _redis_down(_request: Request, exc: Exception) -> SafeJSONResponse:
    log.warning("Redis unavailable: %s", exc)
    return SafeJSONResponse({"detail": f"Redis unavailable: {exc}"}, status_code=503, headers={"Retry-After": "1"})


def install_error_handlers(app: FastAPI) -> None:
    """Map our errors and the infrastructure's to answers (see the module docstring)."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(WriteQueued, _queued)
    app.add_exception_handler(WriteNotConfirmed, _not_confirmed)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(EventValidationError, _invalid)
    app.add_exception_handler(ValidationError, _invalid)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(DBAPIError, _database_down)
    app.add_exception_handler(redis.exceptions.RedisError, _redis_down)
    app.add_exception_handler(ConnectionError, _redis_down)
