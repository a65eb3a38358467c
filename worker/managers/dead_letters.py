"""The dead-letter store: what could not be applied, with its raw payload and the reason."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import delete, func, select, update

from events.wire import dumps
from worker.db import read_session, transaction
from worker.models import DeadLetter
from worker.types import utc_now


def raw_text(payload: Any) -> str:
    """The payload as stored: JSON when it is JSON-able, else its text (bytes decoded leniently)."""
    if isinstance(payload, bytes):
        return payload.decode("utf-8", errors="replace")
    if isinstance(payload, str):
        return payload
    try:
        return dumps(payload).decode()
    except (TypeError, ValueError):
        return repr(payload)


def fingerprint(event_id: str | None, payload: str) -> str:
    return event_id or "sha256:" + hashlib.sha256(payload.encode()).hexdigest()[:56]


class DeadLetterManager:
    """Record, list, mark replayed and drop dead letters."""

    @staticmethod
    async def record(
        payload: Any, reason: str, *, event_id: str | None = None, event_type: str | None = None
    ) -> DeadLetter:
        """Store a dead letter, or count another attempt of one already stored (same id or payload)."""
        text = raw_text(payload)
        key = fingerprint(event_id, text)
        now = utc_now()
        async with transaction() as session:
            letter = await session.scalar(select(DeadLetter).where(DeadLetter.fingerprint == key))
            if letter is None:
                letter = DeadLetter(
                    fingerprint=key,
                    event_id=event_id,
                    event_type=event_type,
                    payload=text,
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
    async def mark_replayed(letter_ids: list[int]) -> int:
        async with transaction() as session:
            result = await session.execute(
                update(DeadLetter).where(DeadLetter.id.in_(letter_ids)).values(replayed_at=utc_now())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    async def drop(letter_id: int) -> bool:
        async with transaction() as session:
            result = await session.execute(delete(DeadLetter).where(DeadLetter.id == letter_id))
            return bool(result.rowcount)  # type: ignore[attr-defined]
