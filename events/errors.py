"""Errors a producer can meet, each with a message a person can act on."""

from __future__ import annotations

from pydantic import ValidationError


class EventValidationError(ValueError):
    """An event (or raw payload) does not satisfy the catalogue; the message names the fields."""

    def __init__(self, message: str, *, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or [message]

    @classmethod
    def from_pydantic(cls, exc: ValidationError, *, prefix: str = "") -> EventValidationError:
        """Flatten pydantic's report into `field: reason` lines."""
        lines = []
        for err in exc.errors(include_url=False):
            parts = list(err["loc"])
            if len(parts) > 1 and isinstance(parts[0], str) and "." in parts[0]:
                parts = parts[1:]  # the union's tag (the event type) is not a field
            loc = ".".join(str(part) for part in parts) or ("type" if err["type"].startswith("union_tag") else "event")
            lines.append(f"{loc}: {err['msg']}")
        head = f"{prefix}invalid event: " if prefix else "invalid event: "
        return cls(head + "; ".join(lines), errors=lines)


class PublishError(RuntimeError):
    """Redis did not acknowledge the job in time: the events may not be queued.

    Publishing the same events again is safe when they carry their `event_id` (event objects always
    do; a dict without one gets a new id each time it is published, and would then apply twice).
    """
