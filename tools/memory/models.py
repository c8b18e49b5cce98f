"""The memory store's table. Full-text indexes are dialect-specific and live in the migration:
SQLite gets an external-content FTS5 table kept in sync by triggers, PostgreSQL a generated
``tsvector`` column with a GIN index."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from auth.dbtypes import UTCDateTime, utcnow


class MemoryDocument(SQLModel, table=True):
    __tablename__ = "memory_documents"
    __table_args__ = (UniqueConstraint("organization_id", "path", name="uq_memory_documents_org_path"),)

    id: int | None = Field(default=None, primary_key=True)
    organization_id: str = Field(foreign_key="organizations.id", max_length=32)
    path: str = Field(max_length=1024)
    content: str = Field(sa_column=Column(Text, nullable=False))
    size: int = Field(default=0, description="UTF-8 bytes of content")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
