"""data_cache.file_size as BIGINT: PostgreSQL's INTEGER refused files of 2 GiB and more

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("data_cache", schema=None) as batch_op:
        batch_op.alter_column("file_size", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("data_cache", schema=None) as batch_op:
        batch_op.alter_column("file_size", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=True)
