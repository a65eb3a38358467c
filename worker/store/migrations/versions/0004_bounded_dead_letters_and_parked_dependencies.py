"""Bounded dead letters whose ids are never reused; parked events say what they wait for

Dead letters get `payload_size`, `payload_sha256` and `payload_truncated`. Existing rows have
them filled from their stored payload (which was always whole): its size and hash, and a payload
over 64 KiB is cut to its first 64 KiB by the same rule as new dead letters
(`worker.store.managers.dead_letters.stored_payload`). On SQLite the table is rebuilt with AUTOINCREMENT,
keeping every row and id, so an id is never handed out twice from now on (an id dropped before
this revision, above the highest kept one, may still be handed out once: SQLite kept no record of
it). PostgreSQL's `dead_letters.id` is a sequence (SERIAL), which never reuses ids already.

Parked events get `waiting_for` ('bot', 'preset', 'signal'), `waiting_for_id` and
`waiting_for_uid`; rows parked before this revision keep NULL (unknown) and are retried on their
back-off as before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import worker.store.types
from worker.store.managers.dead_letters import stored_payload

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: dead_letters as revision 0003 left it, in copy order.
OLD_COLUMNS = (
    "id, fingerprint, event_id, event_type, payload, reason, attempts, first_seen_at, last_seen_at, replayed_at"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_dead_letters_with_autoincrement()
        _describe_existing_payloads()
    else:
        op.add_column("dead_letters", sa.Column("payload_size", sa.BigInteger(), nullable=True))
        op.add_column("dead_letters", sa.Column("payload_sha256", sa.String(length=64), nullable=True))
        op.add_column(
            "dead_letters",
            sa.Column("payload_truncated", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        )
        _describe_existing_payloads()
        op.alter_column("dead_letters", "payload_size", existing_type=sa.BigInteger(), nullable=False)
        op.alter_column("dead_letters", "payload_sha256", existing_type=sa.String(length=64), nullable=False)

    with op.batch_alter_table("parked_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waiting_for", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("waiting_for_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("waiting_for_uid", sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f("ix_parked_events_waiting_for"), ["waiting_for"], unique=False)


def _rebuild_dead_letters_with_autoincrement() -> None:
    """SQLite: a new table with AUTOINCREMENT and the new columns (filled next), every row copied with its id.

    Not a batch operation: Alembic's batch copy reflects the table, and reflection loses AUTOINCREMENT.
    """
    op.create_table(
        "_dead_letters_new",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=True),
        sa.Column("event_type", sa.String(length=50), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("payload_size", sa.BigInteger(), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("payload_truncated", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", worker.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", worker.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", worker.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        sa.UniqueConstraint("fingerprint", name="uq_dead_letters_fingerprint"),
        sqlite_autoincrement=True,
    )
    op.execute(
        f"INSERT INTO _dead_letters_new ({OLD_COLUMNS}, payload_size, payload_sha256) "
        f"SELECT {OLD_COLUMNS}, 0, '' FROM dead_letters"
    )
    op.drop_table("dead_letters")  # its indexes go with it
    op.rename_table("_dead_letters_new", "dead_letters")
    op.create_index("ix_dead_letters_event_id", "dead_letters", ["event_id"], unique=False)
    op.create_index("ix_dead_letters_last_seen_at", "dead_letters", ["last_seen_at"], unique=False)


def _describe_existing_payloads() -> None:
    """Size and hash of every stored payload; one over the limit is cut. A row at a time: payloads may be huge."""
    bind = op.get_bind()
    ids = bind.execute(sa.text("SELECT id FROM dead_letters ORDER BY id")).scalars().all()
    for letter_id in ids:
        payload = bind.execute(sa.text("SELECT payload FROM dead_letters WHERE id = :id"), {"id": letter_id}).scalar()
        stored = stored_payload(payload or "")
        bind.execute(
            sa.text(
                "UPDATE dead_letters SET payload = :text, payload_size = :size, payload_sha256 = :sha256, "
                "payload_truncated = :truncated WHERE id = :id"
            ),
            {
                "text": stored.text,
                "size": stored.size,
                "sha256": stored.sha256,
                "truncated": stored.truncated,
                "id": letter_id,
            },
        )


def downgrade() -> None:
    with op.batch_alter_table("parked_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_parked_events_waiting_for"))
        batch_op.drop_column("waiting_for_uid")
        batch_op.drop_column("waiting_for_id")
        batch_op.drop_column("waiting_for")
    # SQLite: the batch copy leaves AUTOINCREMENT out, as revision 0003 had it.
    with op.batch_alter_table("dead_letters", schema=None, recreate="auto") as batch_op:
        batch_op.drop_column("payload_truncated")
        batch_op.drop_column("payload_sha256")
        batch_op.drop_column("payload_size")
