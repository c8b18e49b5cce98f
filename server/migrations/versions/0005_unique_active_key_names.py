"""one active key per name (a partial unique index that lets a rotation pair share it); replaced_by

Revision ID: 0005_unique_active_key_names
Revises: 0004
Create Date: 2026-12-01 14:00:00

Existing data: keys a rotation replaced (found through their ``key.rotated`` audit rows)
get ``replaced_by``; any other active duplicates, which only the old check-then-insert
race could make, keep the newest key's name and the older ones get `` (<key id>)`` appended.
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_unique_active_key_names"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "revoked_at IS NULL AND replaced_by IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replaced_by", sa.String(length=12), nullable=True))
    connection = op.get_bind()
    rotated = connection.execute(sa.text("SELECT key_id, details FROM audit_events WHERE action = 'key.rotated'"))
    for key_id, details in rotated:
        successor = (json.loads(details) if isinstance(details, str) else details or {}).get("replacedBy")
        if key_id and successor:
            connection.execute(
                sa.text("UPDATE api_keys SET replaced_by = :successor WHERE id = :key_id"),
                {"successor": successor, "key_id": key_id},
            )
    active = connection.execute(
        sa.text(f"SELECT id, organization_id, name FROM api_keys WHERE {ACTIVE} ORDER BY created_at DESC, id")
    )
    seen: set[tuple[str, str]] = set()
    for key_id, organization_id, name in active:
        if (organization_id, name) in seen:
            connection.execute(
                sa.text("UPDATE api_keys SET name = :name WHERE id = :key_id"),
                {"name": f"{name} ({key_id})"[:200], "key_id": key_id},
            )
        seen.add((organization_id, name))
    op.create_index(
        "ux_api_keys_active_name",
        "api_keys",
        ["organization_id", "name"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )


def downgrade() -> None:
    op.drop_index("ux_api_keys_active_name", table_name="api_keys")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("replaced_by")
