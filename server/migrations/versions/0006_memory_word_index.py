"""memory: one word index for both databases (memory_terms), replacing FTS5 and tsvector

Revision ID: 0006_memory_word_index
Revises: 0005_unique_active_key_names

Search statistics come from the organization's own rows of ``memory_terms``, so nothing another
organization writes changes a search answer (the shared FTS5 index leaked bm25 statistics).
Existing documents are indexed here with the same word rules the store uses.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from tools.memory.text import document_words

revision: str = "0006_memory_word_index"
down_revision: str | None = "0005_unique_active_key_names"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_FTS_DROP = [
    "DROP TRIGGER IF EXISTS memory_fts_ai",
    "DROP TRIGGER IF EXISTS memory_fts_ad",
    "DROP TRIGGER IF EXISTS memory_fts_au",
    "DROP TABLE IF EXISTS memory_fts",
]
POSTGRES_FTS_DROP = [
    "DROP INDEX IF EXISTS ix_memory_documents_search",
    "ALTER TABLE memory_documents DROP COLUMN IF EXISTS search",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_FTS_DROP if dialect == "sqlite" else POSTGRES_FTS_DROP if dialect == "postgresql" else []:
        op.execute(statement)
    with op.batch_alter_table("memory_documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("word_count", sa.Integer(), nullable=False, server_default="0"))
    terms = op.create_table(
        "memory_terms",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("word", AutoString(length=64), nullable=False),
        sa.Column("organization_id", AutoString(length=32), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("word_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["memory_documents.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"]),
        sa.PrimaryKeyConstraint("document_id", "word"),
    )
    op.create_index("ix_memory_terms_org_word", "memory_terms", ["organization_id", "word"], unique=False)
    index_existing_documents(terms)


def index_existing_documents(terms: sa.Table) -> None:
    bind = op.get_bind()
    documents = sa.table(
        "memory_documents",
        sa.column("id", sa.Integer()),
        sa.column("organization_id", sa.String()),
        sa.column("path", sa.String()),
        sa.column("content", sa.Text()),
        sa.column("word_count", sa.Integer()),
    )
    query = sa.select(documents.c.id, documents.c.organization_id, documents.c.path, documents.c.content)
    for document_id, organization_id, path, content in bind.execute(query).all():
        counts, length = document_words(path, content)
        rows = [
            {"document_id": document_id, "word": word, "organization_id": organization_id}
            | {"occurrences": occurrences, "word_count": length}
            for word, occurrences in counts.items()
        ]
        if rows:
            op.bulk_insert(terms, rows)
        bind.execute(documents.update().where(documents.c.id == document_id).values(word_count=length))


def downgrade() -> None:
    op.drop_index("ix_memory_terms_org_word", table_name="memory_terms")
    op.drop_table("memory_terms")
    with op.batch_alter_table("memory_documents", schema=None) as batch_op:
        batch_op.drop_column("word_count")
    _load_revision("0002_runtime.py").create_full_text_index()  # as 0002 made it, then filled
    if op.get_bind().dialect.name == "sqlite":
        op.execute("INSERT INTO memory_fts(memory_fts) VALUES ('rebuild')")


def _load_revision(filename: str) -> ModuleType:
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"capgate_revision_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
