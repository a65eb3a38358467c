"""Telling apart an event's fault (dead-letter or park it) from the machinery's (retry later)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from worker.store.fence import FencedOut

_TRANSIENT_WORDS = ("locked", "busy", "disk", "full", "i/o", "connection", "timeout", "readonly")


def is_transient(exc: BaseException) -> bool:
    """The database or the network is unavailable right now; the same work may succeed later."""
    if isinstance(exc, OSError | ConnectionError | TimeoutError | FencedOut):  # FencedOut: the new writer applies it
        return True
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or any(w in str(exc.orig).lower() for w in _TRANSIENT_WORDS)
    return False


def is_event_fault(exc: BaseException) -> bool:
    """May be caused by an event's content: the batch is split until the event that raises it stands alone.

    Anything that is not the machinery being unavailable counts, not only the errors we expect
    (a refusal, a constraint, a bad value): an `OverflowError` converting one event's date, or a
    bug met by one event only, must cost that event, never its neighbours.
    """
    return isinstance(exc, Exception) and not is_transient(exc)


def describe(exc: BaseException) -> str:
    """One line: the class and the message (SQLAlchemy's DBAPI errors reduced to the driver's words)."""
    message = str(exc.orig) if isinstance(exc, DBAPIError) else str(exc)
    return f"{type(exc).__name__}: {message}"
