"""authorization decision log; policy revision on keys

Revision ID: 0008_authz_decisions
Revises: 0007_integrations
Create Date: 2026-12-01 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import auth.dbtypes

revision: str = "0008_authz_decisions"
down_revision: str | None = "0007_integrations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("policy_revision", sa.Integer(), server_default="1", nullable=False))
    op.create_table(
        "authz_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", auth.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("organization_id", sa.String(length=32), nullable=True),
        sa.Column("key_id", sa.String(length=12), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("tool", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("policy_revision", sa.Integer(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_authz_decisions_created_at", "authz_decisions", ["created_at"])
    op.create_index("ix_authz_decisions_org_id", "authz_decisions", ["organization_id", "id"])
    op.create_index("ix_authz_decisions_key_id", "authz_decisions", ["key_id", "id"])


def downgrade() -> None:
    op.drop_table("authz_decisions")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("policy_revision")
