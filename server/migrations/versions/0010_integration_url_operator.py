"""integrations: remember whether the operator (CLI) set the URL, which exempts it from the destination rules

Revision ID: 0009_integration_url_operator
Revises: 0008_authz_decisions
Create Date: 2026-12-01 15:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_integration_url_operator"
down_revision: str | None = "0009_admin_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("url_from_operator", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE integrations SET url_from_operator = true WHERE created_by = 'cli'")


def downgrade() -> None:
    with op.batch_alter_table("integrations") as batch:
        batch.drop_column("url_from_operator")
