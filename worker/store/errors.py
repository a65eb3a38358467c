"""Domain errors the managers raise; the worker maps them to per-event outcomes, the API to status codes."""

from __future__ import annotations


class KomasError(Exception):
    """Base of every refusal that is about the data, not the machinery."""


class NotFoundError(KomasError):
    """The object a call names does not exist."""


class MissingDependencyError(NotFoundError):
    """An event refers to something not there yet (a close before its create); may succeed later."""


class DuplicateError(KomasError):
    """A unique value (preset name, signal uid) is already taken."""


class InvalidStateError(KomasError):
    """The object exists but cannot make this move (closing a closed signal)."""
