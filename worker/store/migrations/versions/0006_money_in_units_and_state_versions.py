"""money in units of 10^-8; versions of state that follows time

Amounts (`bots.total_profit`, `signals.pnl_amount`) become BIGINT units of 10^-8 (see
`worker.store.money`): existing values are rounded to 8 decimal places, which also removes the float
drift they may hold (304.16958800000003 becomes 304.169588). `bots.active_version` and
`presets.metrics_version` record when the state they guard was true (`worker.store.rules.version`);
existing rows start without one, so the next toggle or backtest applies.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column, nullable) of every amount.
AMOUNTS = (("bots", "total_profit", False), ("signals", "pnl_amount", True))


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, column, nullable in AMOUNTS:
        if sqlite:  # batch mode copies the table with CAST(... AS BIGINT): round first
            op.execute(f"UPDATE {table} SET {column} = ROUND({column} * 100000000) WHERE {column} IS NOT NULL")
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column(
                column,
                existing_type=sa.Float(),
                type_=sa.BigInteger(),
                existing_nullable=nullable,
                postgresql_using=f"round({column} * 100000000)::bigint",
            )
    with op.batch_alter_table("bots") as batch_op:
        batch_op.add_column(sa.Column("active_version", sa.String(length=80), nullable=True))
    with op.batch_alter_table("presets") as batch_op:
        batch_op.add_column(sa.Column("metrics_version", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("presets") as batch_op:
        batch_op.drop_column("metrics_version")
    with op.batch_alter_table("bots") as batch_op:
        batch_op.drop_column("active_version")
    for table, column, nullable in AMOUNTS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column(
                column,
                existing_type=sa.BigInteger(),
                type_=sa.Float(),
                existing_nullable=nullable,
                postgresql_using=f"{column} / 100000000.0",
            )
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"UPDATE {table} SET {column} = {column} / 100000000.0 WHERE {column} IS NOT NULL")
