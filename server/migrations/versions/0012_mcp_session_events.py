"""mcp_session_events: the shared event store legacy SSE streams resume from

Revision ID: 0012_mcp_session_events
Revises: 0011_mcp_session_owners
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import auth.dbtypes

revision: str = "0012_mcp_session_events"
down_revision: str | None = "0011_mcp_session_owners"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mcp_session_events",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("stream_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", auth.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "sequence"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_mcp_session_events_created_at", "mcp_session_events", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_mcp_session_events_created_at", table_name="mcp_session_events")
    op.drop_table("mcp_session_events")
