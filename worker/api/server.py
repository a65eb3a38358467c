"""The HTTP protocol `komas api` runs uvicorn with: uvicorn's h11 protocol plus a deadline for request heads.

uvicorn closes a keep-alive connection that stays idle, but not one whose client sends its request
line and headers slowly, or opens a connection and sends nothing (a "slow loris"): each would hold a
socket, and a slot, for ever. Here a request head must have arrived `head_timeout_s` after the
connection opened, or after the previous response ended; otherwise the connection is closed. The
body has its own deadline, in the application (`worker.api.limits.BodyTimeout`).
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeadTimeoutH11Protocol(H11Protocol):
    """See the module docstring; `head_timeout_s` is set on the subclass `with_head_timeout` makes."""

    head_timeout_s: float = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head is in: the body's deadline takes over
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._wait_for_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _wait_for_head(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def with_head_timeout(timeout_s: float) -> type[HeadTimeoutH11Protocol]:
    """The protocol class for uvicorn's `http=` option, with this deadline for request heads."""
    return type("KomasH11Protocol", (HeadTimeoutH11Protocol,), {"head_timeout_s": timeout_s})
