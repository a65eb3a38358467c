"""OpenAPI documentation of the error answers, so clients (and the schema fuzzer) know them."""

from __future__ import annotations

from typing import Any

from worker.api.schemas import Problem, Queued

Responses = dict[int | str, dict[str, Any]]

READ: Responses = {
    401: {"model": Problem, "description": "Token missing or wrong (when reads need one)."},
    503: {"model": Problem, "description": "The database is unavailable."},
}
FOUND: Responses = {**READ, 404: {"model": Problem, "description": "No such object."}}
WRITE: Responses = {
    202: {"model": Queued, "description": "Queued; the worker did not answer within KOMAS_API_WAIT_S."},
    401: {"model": Problem, "description": "Token missing or wrong."},
    413: {"model": Problem, "description": "Body larger than KOMAS_API_MAX_BODY_BYTES."},
    422: {"model": Problem, "description": "Invalid body or parameters; `detail` names the field."},
    503: {"model": Problem, "description": "Redis or the database is unavailable."},
}
WRITE_FOUND: Responses = {**WRITE, 404: {"model": Problem, "description": "No such object."}}
WRITE_UNIQUE: Responses = {**WRITE_FOUND, 409: {"model": Problem, "description": "Name already taken."}}
