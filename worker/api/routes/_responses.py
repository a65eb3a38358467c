"""OpenAPI documentation of the error answers, so clients (and the schema fuzzer) know them."""

from __future__ import annotations

from typing import Any

from worker.api.schemas import Problem, Queued, Unconfirmed

Responses = dict[int | str, dict[str, Any]]

#: Answers the middleware gives to any request (`worker.api.security`, `worker.api.limits`).
ANY: Responses = {
    400: {"model": Problem, "description": "The body could not be read as JSON."},
    408: {"model": Problem, "description": "The body did not arrive within KOMAS_API_BODY_TIMEOUT_S."},
    421: {"model": Problem, "description": "No token configured and the Host is not loopback."},
}
READ: Responses = {
    **ANY,
    401: {"model": Problem, "description": "Token missing or wrong (when reads need one)."},
    503: {"model": Problem, "description": "The database is unavailable."},
}
FOUND: Responses = {**READ, 404: {"model": Problem, "description": "No such object."}}
WRITE: Responses = {
    **ANY,
    202: {"model": Queued, "description": "Queued; the worker did not answer within KOMAS_API_WAIT_S."},
    401: {"model": Problem, "description": "Token missing or wrong."},
    403: {"model": Problem, "description": "No token configured and the Origin is another site's."},
    413: {
        "model": Problem,
        "description": "Body larger than KOMAS_API_MAX_BODY_BYTES, or an event larger than KOMAS_MAX_EVENT_BYTES.",
    },
    415: {"model": Problem, "description": "A write's body must be `Content-Type: application/json`."},
    422: {"model": Problem, "description": "Invalid body, parameters or Idempotency-Key; `detail` names the field."},
    503: {
        "model": Unconfirmed | Problem,
        "description": "Redis or the database is unavailable; when Redis failed, the body says whether the write "
        "may still apply and which Idempotency-Key retries it safely.",
    },
}
WRITE_FOUND: Responses = {**WRITE, 404: {"model": Problem, "description": "No such object."}}
WRITE_UNIQUE: Responses = {**WRITE_FOUND, 409: {"model": Problem, "description": "Name already taken."}}
