"""The dead-letter store: what could not be applied, with (the start of) its raw payload and the reason.

Every dead letter goes through `DeadLetterManager.record`. A payload is kept whole up to
`PAYLOAD_LIMIT_BYTES` (64 KiB); of a larger one only its first 64 KiB are stored, together with
the whole payload's size in bytes and SHA-256, and `payload_truncated` says so. Unbounded, one
huge event became a row (and an answer to `GET /api/db/dead-letters`) as large as itself.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update

from events.wire import dumps
from worker.store.db import read_session, transaction
from worker.store.models import DeadLetter
from worker.store.types import utc_now

#: Bytes of a payload a dead letter keeps; the rest is known by its size and hash only.
PAYLOAD_LIMIT_BYTES = 64 * 1024


def payload_bytes(payload: Any) -> bytes:
    """The payload as bytes: raw bytes as they came, text as UTF-8, anything else as JSON (else its repr)."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8", errors="surrogatepass")  # a lone surrogate is counted, not refused
    try:
        return dumps(payload)
    except (TypeError, ValueError):
        return repr(payload).encode("utf-8", errors="surrogatepass")


@dataclass(frozen=True)
class StoredPayload:
    """What a dead letter keeps of a payload."""

    #: The payload as text (invalid UTF-8 shown as U+FFFD), cut to at most `PAYLOAD_LIMIT_BYTES` bytes of UTF-8.
    text: str
    #: Size in bytes and SHA-256 (hex) of the whole payload.
    size: int
    sha256: str
    #: Whether `text` holds less than the whole payload.
    truncated: bool


def stored_payload(payload: Any, limit: int = PAYLOAD_LIMIT_BYTES) -> StoredPayload:
    """Bound a payload for storage: its first `limit` bytes as text, plus the size and hash of all of it."""
    data = payload_bytes(payload)
    # Incrementally: a character cut in two at the limit is left out, not shown as U+FFFD.
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data[:limit], final=len(data) <= limit)
    encoded = text.encode()
    cut = len(data) > limit or len(encoded) > limit
    if len(encoded) > limit:  # replacement characters made it longer: cut again, at a character's end
        text = encoded[:limit].decode("utf-8", errors="ignore")
    return StoredPayload(text=text, size=len(data), sha256=hashlib.sha256(data).hexdigest(), truncated=cut)


def fingerprint(event_id: str | None, payload_sha256: str) -> str:
    """What makes two dead letters the same: the event id when known, else the hash of the whole payload."""
    return event_id or "sha256:" + payload_sha256[:56]


class DeadLetterManager:
    """Record, list, mark replayed and drop dead letters."""

    @staticmethod
    async def record(
        payload: Any, reason: str, *, event_id: str | None = None, event_type: str | None = None
    ) -> DeadLetter:
        """Store a dead letter, or count another attempt of one already stored (same id or payload)."""
        stored = stored_payload(payload)
        key = fingerprint(event_id, stored.sha256)
        now = utc_now()
        async with transaction() as session:
            letter = await session.scalar(select(DeadLetter).where(DeadLetter.fingerprint == key))
            if letter is None:
                letter = DeadLetter(
                    fingerprint=key,
                    event_id=event_id,
                    event_type=event_type,
                    payload=stored.text,
                    payload_size=stored.size,
                    payload_sha256=stored.sha256,
                    payload_truncated=stored.truncated,
                    reason=reason,
                    attempts=1,
                    first_seen_at=now,
                    last_seen_at=now,
                )
                session.add(letter)
            else:
                letter.attempts += 1
                letter.reason = reason
                letter.last_seen_at = now
                letter.replayed_at = None
            await session.flush()
            return letter

    @staticmethod
    async def list_all(include_replayed: bool = False, limit: int = 100, offset: int = 0) -> list[DeadLetter]:
        """Newest first; replayed ones only when asked."""
        query = select(DeadLetter).order_by(DeadLetter.last_seen_at.desc(), DeadLetter.id.desc())
        if not include_replayed:
            query = query.where(DeadLetter.replayed_at.is_(None))
        async with read_session() as session:
            return list((await session.scalars(query.limit(limit).offset(offset))).all())

    @staticmethod
    async def count(include_replayed: bool = False) -> int:
        query = select(func.count()).select_from(DeadLetter)
        if not include_replayed:
            query = query.where(DeadLetter.replayed_at.is_(None))
        async with read_session() as session:
            return int(await session.scalar(query) or 0)

    @staticmethod
    async def get(letter_id: int) -> DeadLetter | None:
        async with read_session() as session:
            return await session.get(DeadLetter, letter_id)

    @staticmethod
    async def mark_replayed(letter_ids: list[int], replayed: bool = True) -> int:
        """Mark dead letters replayed (hidden from the default list), or not replayed again."""
        async with transaction() as session:
            result = await session.execute(
                update(DeadLetter)
                .where(DeadLetter.id.in_(letter_ids))
                .values(replayed_at=utc_now() if replayed else None)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    async def drop(letter_id: int) -> bool:
        async with transaction() as session:
            result = await session.execute(delete(DeadLetter).where(DeadLetter.id == letter_id))
            return bool(result.rowcount)  # type: ignore[attr-defined]
