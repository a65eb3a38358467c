"""writer fences: the highest fencing token that has written, one row per partition (see worker/runtime/lease.py)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    fences = op.create_table(
        "writer_fences",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_writer_fences")),
    )
    op.bulk_insert(fences, [{"name": "main", "token": 0}])


def downgrade() -> None:
    op.drop_table("writer_fences")
