"""mcp_session_owners: the replica that owns each legacy MCP session, and its key

Revision ID: 0011_mcp_session_owners
Revises: 0010_integration_url_operator
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import auth.dbtypes

revision: str = "0011_mcp_session_owners"
down_revision: str | None = "0010_integration_url_operator"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mcp_session_owners",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=12), nullable=False),
        sa.Column("owner_url", sa.String(length=300), nullable=False),
        sa.Column("created_at", auth.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id"),
    )
    op.create_index("ix_mcp_session_owners_owner_url", "mcp_session_owners", ["owner_url"])


def downgrade() -> None:
    op.drop_index("ix_mcp_session_owners_owner_url", table_name="mcp_session_owners")
    op.drop_table("mcp_session_owners")
