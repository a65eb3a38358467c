"""Idempotent REST writes: the `Idempotency-Key` header, the event id it becomes, the first answer kept.

Every write is one command event (`POST /api/events`: the events given). Its event id comes from the
`Idempotency-Key` header: a key that is a UUID is the event id itself, any other key is mapped to
`uuid5(KEY_NAMESPACE, key)`. Without the header the write gets a new random id, and an answer that
may call for a retry (503) names it as the key to send. The worker applies an event id once, so a
retry never applies twice; so that it also gets the first *answer*, the API keeps a record in Redis,
`<queue>:api:write:<event id>`, for `KOMAS_API_IDEMPOTENCY_TTL_S`:

- `fingerprint`: what was asked (method, path, query, body); the same key on another request is 422;
- `answer`: the first final answer (status and body) of a write sent with a key, kept once there is
  one; a retry gets it back with the header `Idempotent-Replayed: true`. 202 (queued) and 503 are not
  final: a retry of those waits for the same job (its id is made from the event id), reads the result
  the worker kept, or queues the same event again, which the worker then counts as a duplicate.

A request refused before it started (auth, a body that does not validate, 413) makes no record: the
client may fix it and send it again with the same key.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from uuid import UUID, uuid4, uuid5

import orjson
from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute

from events.wire import dumps, loads
from worker.api.errors import REDIS_ERRORS, ApiError, Replay, WriteNotConfirmed, error_response
from worker.api.resources import Resources
from worker.api.schemas import WriteRequest

log = logging.getLogger("komas.api")

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
#: Fixed forever: the same key must give the same event id in every version.
KEY_NAMESPACE = UUID("6f0b3c52-7e0e-4d8e-9a59-2b7c1c6c3f41")
MAX_KEY_LENGTH = 255
#: Visible ASCII, spaces inside allowed (an HTTP header value that every client can send as it is).
#: What may fail while keeping an answer: Redis, or a body that is not text (ours always are).
_KEEP_ERRORS: tuple[type[BaseException], ...] = (*REDIS_ERRORS, UnicodeDecodeError)
_KEY = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


def event_id_for_key(key: str) -> UUID:
    """The event id of a write sent with this `Idempotency-Key`; 422 for a key that cannot be one."""
    if len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise ApiError(
            422,
            f"{KEY_HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters (a UUID is used as the event id)",
        )
    try:
        return UUID(key)
    except ValueError:
        return uuid5(KEY_NAMESPACE, key)


def _canonical_body(body: bytes) -> bytes:
    """The body as sorted compact JSON when it is JSON (a retry may reorder keys), else its bytes."""
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return body


async def write_request(
    request: Request,
    given: Annotated[
        str | None,
        Header(
            alias=KEY_HEADER,
            description="Makes the write idempotent: a retry with the same key applies nothing twice and gets the "
            "first answer back. A UUID is the event id itself; any other key (1-255 visible ASCII) is mapped to one.",
        ),
    ] = None,
) -> WriteRequest:
    """Dependency of every write: read `Idempotency-Key` (422 when unusable) and fingerprint the request."""
    event_id = uuid4() if given is None else event_id_for_key(given)
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), request.url.query.encode()):
        digest.update(part + b"\0")
    digest.update(_canonical_body(await request.body()))
    write = WriteRequest(event_id, given or str(event_id), given is not None, digest.hexdigest())
    request.state.write = write
    return write


WriteRequestDep = Annotated[WriteRequest, Depends(write_request)]


class WriteRecord:
    """The record of one write in Redis (see the module docstring)."""

    def __init__(self, resources: Resources, write: WriteRequest, request: Request) -> None:
        config = resources.config
        self.redis = resources.redis
        self.write = write
        self.request = request
        self.ttl_s = config.api_idempotency_ttl_s
        self.key = f"{config.queue}:api:write:{write.event_id}"

    async def claim(self) -> None:
        """Start the write, or meet an earlier one with this key: raises `Replay` with its first answer, or
        422 when that one asked something else. Redis down: 503, nothing queued by this request."""
        mine = dumps({"fingerprint": self.write.fingerprint})
        try:
            if not await self.redis.set(self.key, mine, nx=True, ex=self.ttl_s):
                await self._meet_earlier(mine)
        except REDIS_ERRORS as exc:
            raise WriteNotConfirmed(
                self.write, [str(self.write.event_id)], may_apply=self.write.key_given, reason=exc, queued=False
            ) from None
        self.request.state.write_record = self

    async def _meet_earlier(self, mine: bytes) -> None:
        raw = await self.redis.get(self.key)
        if raw is None:  # expired just now: this request starts it again
            await self.redis.set(self.key, mine, ex=self.ttl_s)
            return
        record = loads(raw)
        if not isinstance(record, dict) or record.get("fingerprint") != self.write.fingerprint:
            raise ApiError(
                422,
                f"{KEY_HEADER} {self.write.key!r} was already used for a different request; "
                "use a new key for a new request",
            )
        answer = record.get("answer")
        if isinstance(answer, dict):
            raise Replay(answer)

    async def keep(self, response: Response) -> None:
        """Keep a final answer for the retries; never fails the request (a retry then reads the job's result)."""
        if response.status_code >= 500:  # 202 "not answered yet" and 503 arrive as exceptions, never here
            return
        if not self.write.key_given:  # nobody will ask again: only the fingerprint is kept (a few bytes)
            return
        try:
            answer = {
                "status": response.status_code,
                "body": bytes(response.body).decode(),
                "media_type": response.media_type,
            }
            record = dumps({"fingerprint": self.write.fingerprint, "answer": answer})
            await self.redis.set(self.key, record, ex=self.ttl_s)
        except _KEEP_ERRORS as exc:
            log.warning("the answer to write %s was not kept for retries: %s", self.write.event_id, exc)


def replayed(answer: dict[str, Any]) -> Response:
    """The first answer again, marked as such."""
    return Response(
        content=str(answer.get("body", "")).encode(),
        status_code=int(answer.get("status", 200)),
        media_type=answer.get("media_type") or None,
        headers={REPLAYED_HEADER: "true"},
    )


class IdempotentRoute(APIRoute):
    """Routes whose writes keep their first answer (`WriteRecord.keep`) and give it to retries (`Replay`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def idempotent(request: Request) -> Response:
            try:
                response = await handler(request)
            except Replay as replay:
                return replayed(replay.answer)
            except ApiError as exc:
                response = error_response(exc)
            record: WriteRecord | None = getattr(request.state, "write_record", None)
            if record is not None:
                await record.keep(response)
            return response

        return idempotent
