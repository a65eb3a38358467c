"""Limits on request bodies, as pure ASGI middleware: their size and how long they may take to arrive.

- 413 for bodies over `api_max_body_bytes`. Both checks are needed: `Content-Length` refuses an honest
  large body before it is read; counting the streamed bytes catches a chunked body (no length) or a
  client that lies about its length.
- 408 for a body that has not arrived `api_body_timeout_s` after the request began (uvicorn has no such
  timeout: a client sending one byte a minute would hold a connection and a request forever).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(HTTPException):
    """Raised from `receive` when the streamed body passes the limit.

    An `HTTPException`, so FastAPI's body reading passes it on untouched and the 413 reaches the client.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes (KOMAS_API_MAX_BODY_BYTES)")


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodySizeLimit:
    """Wrap an ASGI app: answer 413 to any HTTP request whose body is larger than `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await send_problem(send, 413, f"request body larger than {self.max_bytes} bytes (KOMAS_API_MAX_BODY_BYTES)")


async def send_problem(send: Send, status: int, detail: str) -> None:
    """Answer `{"detail": ...}` with `status` and close the connection (the body may not have been read)."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyTimedOut(HTTPException):
    """Raised from `receive` when the body is late; an `HTTPException` for the reason given in `BodyTooLarge`."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            408,
            f"request body not received within {timeout_s:g} s (KOMAS_API_BODY_TIMEOUT_S)",
            headers={"Connection": "close"},
        )


class BodyTimeout:
    """Wrap an ASGI app: a request body must have arrived whole `timeout_s` after the request began."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        body_done = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:  # later receives wait for the disconnect, which has no deadline
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimedOut(self.timeout_s) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except BodyTimedOut as exc:
            if started:
                raise
            await send_problem(send, 408, str(exc.detail))
