"""DeadLetterManager: bounded payloads (first 64 KiB, size and hash of all of it), fingerprints, ids never reused.

On SQLite and PostgreSQL; the migration test builds a database at revision 0003 with rows in it
(one of 100 KB, the highest id dropped) and checks what revision 0004 makes of them.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from events.wire import dumps
from worker import close_db, init_db
from worker.store.db import Database
from worker.store.managers.dead_letters import PAYLOAD_LIMIT_BYTES, DeadLetterManager, payload_bytes, stored_payload
from worker.store.migrate import current_revision, head_revision, upgrade

LIMIT = PAYLOAD_LIMIT_BYTES


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_a_small_payload_is_kept_whole(db: Database) -> None:
    event = {"event_id": "e-small", "type": "signal.created", "note": "héllo"}
    letter = await DeadLetterManager.record(event, "bad", event_id="e-small", event_type="signal.created")
    assert letter.payload == dumps(event).decode()
    assert (letter.payload_size, letter.payload_sha256, letter.payload_truncated) == (
        len(dumps(event)),
        sha256(dumps(event)),
        False,
    )


@pytest.mark.parametrize("kind", ["text", "bytes", "json"])
async def test_an_oversized_payload_keeps_its_first_64_kib_its_size_and_its_hash(db: Database, kind: str) -> None:
    """A 3 MB payload (text, raw job bytes, or a decoded event) becomes a row of 64 KiB, and says so."""
    big = "x" + "é" * 1_500_000  # two bytes each after one: the limit falls inside a character
    payload: object = {"text": big, "bytes": big.encode(), "json": {"event_id": "e-big", "blob": big}}[kind]
    whole = payload_bytes(payload)
    assert len(whole) > 3_000_000

    letter = await DeadLetterManager.record(payload, "too big", event_id="e-big" if kind == "json" else None)

    stored = await DeadLetterManager.get(letter.id)
    assert stored is not None
    assert len(stored.payload.encode()) <= LIMIT
    assert len(stored.payload.encode()) >= LIMIT - 3
    assert whole.decode().startswith(stored.payload)
    assert (stored.payload_size, stored.payload_sha256, stored.payload_truncated) == (len(whole), sha256(whole), True)
    listed = await DeadLetterManager.list_all(limit=5)
    assert sum(len(item.payload.encode()) for item in listed) <= 5 * LIMIT


async def test_the_same_oversized_payload_again_counts_an_attempt_and_a_different_end_does_not(db: Database) -> None:
    """The fingerprint hashes the whole payload: two payloads alike in their first 64 KiB are two letters."""
    head = "x" * (2 * LIMIT)
    first = await DeadLetterManager.record(head + "A", "not JSON")
    again = await DeadLetterManager.record(head + "A", "not JSON")
    other = await DeadLetterManager.record(head + "B", "not JSON")

    assert again.id == first.id
    assert again.attempts == 2
    assert other.id != first.id
    assert first.payload == other.payload  # what is stored is alike; the hashes tell them apart
    assert first.payload_sha256 != other.payload_sha256
    assert await DeadLetterManager.count() == 2


async def test_bytes_that_are_not_utf8_and_lone_surrogates_are_stored_readably(db: Database) -> None:
    raw = await DeadLetterManager.record(b"\x80\x04 not json", "not JSON")
    assert raw.payload == "\ufffd\x04 not json"
    assert (raw.payload_size, raw.payload_sha256) == (11, sha256(b"\x80\x04 not json"))

    surrogate = await DeadLetterManager.record('{"name": "x\ud83d"}', "lone surrogate")
    stored = await DeadLetterManager.get(surrogate.id)
    assert stored is not None
    assert "\ud83d" not in stored.payload
    assert stored.payload_size == len('{"name": "x\ud83d"}'.encode("utf-8", "surrogatepass"))


async def test_dead_letter_ids_are_never_reused_after_a_drop(db: Database) -> None:
    """SQLite without AUTOINCREMENT handed the highest id out again; PostgreSQL's sequence never does."""
    ids = [(await DeadLetterManager.record(f"payload {n}", "bad")).id for n in range(3)]
    assert await DeadLetterManager.drop(ids[-1]) is True
    assert await DeadLetterManager.drop(ids[-2]) is True

    newer = await DeadLetterManager.record("payload after the drop", "bad")

    assert newer.id > ids[-1]
    assert await DeadLetterManager.get(ids[-1]) is None


async def test_mark_replayed_and_back(db: Database) -> None:
    letter = await DeadLetterManager.record("p", "bad")
    assert await DeadLetterManager.mark_replayed([letter.id]) == 1
    assert await DeadLetterManager.count() == 0
    assert await DeadLetterManager.mark_replayed([letter.id], replayed=False) == 1
    assert await DeadLetterManager.count() == 1


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(st.binary(max_size=300), st.text(max_size=150).map(lambda s: s.encode())),
    limit=st.integers(min_value=1, max_value=200),
)
def test_the_stored_text_never_exceeds_the_limit_and_says_when_it_holds_less(data: bytes, limit: int) -> None:
    stored = stored_payload(data, limit)
    assert len(stored.text.encode()) <= limit
    assert (stored.size, stored.sha256) == (len(data), sha256(data))
    readable = data.decode("utf-8", errors="replace")
    assert readable.startswith(stored.text)
    assert stored.truncated == (stored.text != readable)


async def test_revision_0004_keeps_rows_and_ids_and_describes_their_payloads(database_url: str) -> None:
    """From 0003 with rows (one of 100 KB, the highest id dropped) to head: ids kept, payloads bounded."""
    database = init_db(database_url, migrate=False)
    try:
        await upgrade(database.writer, "head")
        async with database.writer.begin() as conn:
            await conn.execute(text("DELETE FROM dead_letters"))
        await _downgrade(database, "0003")
        rows = [(1, "small", "fp1"), (2, "y" * 100_000, "fp2"), (3, "third", "fp3"), (4, "dropped", "fp4")]
        async with database.writer.begin() as conn:
            for letter_id, payload, fingerprint in rows:
                await conn.execute(
                    text(
                        "INSERT INTO dead_letters (id, fingerprint, payload, reason, attempts, first_seen_at, "
                        "last_seen_at) VALUES (:id, :fp, :payload, 'bad', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"id": letter_id, "fp": fingerprint, "payload": payload},
                )
            await conn.execute(text("DELETE FROM dead_letters WHERE id = 4"))
            if database.writer.dialect.name == "postgresql":  # rows written with explicit ids: move the sequence on
                await conn.execute(text("SELECT setval('dead_letters_id_seq', 4)"))

        await upgrade(database.writer)

        assert await current_revision(database.writer) == head_revision()
        async with database.writer.connect() as conn:
            got = (
                await conn.execute(
                    text(
                        "SELECT id, length(payload), payload_size, payload_sha256, payload_truncated "
                        "FROM dead_letters ORDER BY id"
                    )
                )
            ).all()
        assert [(row[0], row[1], row[2], row[3], bool(row[4])) for row in got] == [
            (1, 5, 5, sha256(b"small"), False),
            (2, LIMIT, 100_000, sha256(b"y" * 100_000), True),
            (3, 5, 5, sha256(b"third"), False),
        ]
        third = await DeadLetterManager.get(3)
        assert third is not None
        assert await DeadLetterManager.drop(3) is True
        newer = await DeadLetterManager.record("after the migration", "bad")
        assert newer.id > 3
    finally:
        await close_db()


async def _downgrade(database: Database, revision: str) -> None:
    from alembic import command

    from worker.store.migrate import alembic_config

    async with database.writer.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), revision))
