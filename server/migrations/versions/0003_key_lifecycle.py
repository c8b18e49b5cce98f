"""key lifecycle: daily request counts per key, so the daily quota survives a restart

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 20:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "key_daily_usage",
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "day"),
    )


def downgrade() -> None:
    op.drop_table("key_daily_usage")
