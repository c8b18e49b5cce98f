"""The memory store's tables: one row per document, and the word index ``memory_search`` reads
(``memory_terms``: how often each word occurs in each document, kept in step by the store in the
transaction that writes the document). Both are open to tools' org-bound sessions (``TOOL_TABLE``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from auth.dbtypes import UTCDateTime, utcnow
from tools.database import TOOL_TABLE


class MemoryDocument(SQLModel, table=True):
    __tablename__ = "memory_documents"
    __table_args__ = (
        UniqueConstraint("organization_id", "path", name="uq_memory_documents_org_path"),
        {"info": TOOL_TABLE},
    )

    id: int | None = Field(default=None, primary_key=True)
    organization_id: str = Field(foreign_key="organizations.id", max_length=32)
    path: str = Field(max_length=1024)
    content: str = Field(sa_column=Column(Text, nullable=False))
    size: int = Field(default=0, description="UTF-8 bytes of content")
    word_count: int = Field(default=0, description="words of path and content, for search ranking")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class MemoryTerm(SQLModel, table=True):
    __tablename__ = "memory_terms"
    __table_args__ = (Index("ix_memory_terms_org_word", "organization_id", "word"), {"info": TOOL_TABLE})

    document_id: int = Field(
        sa_column=Column(Integer, ForeignKey("memory_documents.id", ondelete="CASCADE"), primary_key=True)
    )
    word: str = Field(primary_key=True, max_length=64)
    organization_id: str = Field(foreign_key="organizations.id", max_length=32)
    occurrences: int
    word_count: int = Field(description="the document's word count, so ranking needs no second query")


DOCUMENTS: Table = SQLModel.metadata.tables["memory_documents"]
TERMS: Table = SQLModel.metadata.tables["memory_terms"]
