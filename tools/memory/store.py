"""The organization's memory documents. Every function takes an ``OrganizationDatabase`` and
touches only that organization's rows.

Write and append are one statement each (an upsert), so each is atomic and concurrent
appends cannot lose one another; the size limit is part of the statement and the
organization quota is checked in the same transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from auth.dbtypes import dialect_insert, iso, table_of, utcnow
from tools.context import OrganizationDatabase, ToolError
from tools.memory.models import MemoryDocument

_WORD = re.compile(r"\w+", re.UNICODE)
SNIPPET_START, SNIPPET_END = "**", "**"


@dataclass(frozen=True, slots=True)
class MemoryLimits:
    max_document_bytes: int
    organization_quota_bytes: int


def _byte_size(content: str) -> int:
    return len(content.encode("utf-8"))


async def list_directory(db: OrganizationDatabase, path: str) -> dict[str, Any]:
    prefix = path.rstrip("/") + "/"
    query = (
        select(col(MemoryDocument.path), col(MemoryDocument.size), col(MemoryDocument.updated_at))
        .where(col(MemoryDocument.organization_id) == db.organization_id)
        .where(col(MemoryDocument.path).startswith(prefix, autoescape=True))
        .order_by(col(MemoryDocument.path))
    )
    async with db.session() as session:
        rows = (await session.execute(query)).all()
    entries: dict[str, dict[str, Any]] = {}
    for doc_path, size, updated_at in rows:
        name, _, rest = doc_path[len(prefix) :].partition("/")
        child = prefix + name
        if rest:
            entries.setdefault(name, {"name": name, "path": child, "type": "directory"})
        else:
            entries[name] = {"name": name, "path": child, "type": "file", "size": size, "updatedAt": iso(updated_at)}
    return {"path": path, "entries": sorted(entries.values(), key=lambda entry: entry["name"])}


async def read_document(db: OrganizationDatabase, path: str) -> dict[str, Any]:
    query = select(col(MemoryDocument.content), col(MemoryDocument.size), col(MemoryDocument.updated_at)).where(
        col(MemoryDocument.organization_id) == db.organization_id, col(MemoryDocument.path) == path
    )
    async with db.session() as session:
        document = (await session.execute(query)).first()
    if document is None:
        raise ToolError(f"No such document: {path}")
    return {"path": path, "content": document.content, "size": document.size, "updatedAt": iso(document.updated_at)}


async def _check_quota(session: AsyncSession, db: OrganizationDatabase, limits: MemoryLimits) -> None:
    used = await session.scalar(
        select(func.coalesce(func.sum(col(MemoryDocument.size)), 0)).where(
            col(MemoryDocument.organization_id) == db.organization_id
        )
    )
    if int(used or 0) > limits.organization_quota_bytes:
        raise ToolError(f"Memory quota of {limits.organization_quota_bytes} bytes for this organization is exhausted")


async def _upsert(
    db: OrganizationDatabase, path: str, content: str, limits: MemoryLimits, *, append: bool
) -> dict[str, Any]:
    size = _byte_size(content)
    if size > limits.max_document_bytes:
        raise ToolError(f"Document would exceed {limits.max_document_bytes} bytes")
    now = utcnow()
    table = table_of(MemoryDocument)
    async with db.transaction() as session:
        statement = dialect_insert(session, table).values(
            organization_id=db.organization_id, path=path, content=content, size=size, created_at=now, updated_at=now
        )
        if append:
            new_size = table.c.size + statement.excluded.size
            changes = {"content": table.c.content + statement.excluded.content, "size": new_size, "updated_at": now}
            statement = statement.on_conflict_do_update(
                index_elements=["organization_id", "path"],
                set_=changes,
                where=new_size <= limits.max_document_bytes,
            )
        else:
            changes = {"content": statement.excluded.content, "size": statement.excluded.size, "updated_at": now}
            statement = statement.on_conflict_do_update(index_elements=["organization_id", "path"], set_=changes)
        written = (await session.execute(statement.returning(table.c.size))).scalar_one_or_none()
        if written is None:
            raise ToolError(f"Document would exceed {limits.max_document_bytes} bytes")
        await _check_quota(session, db, limits)
    return {"path": path, "size": written}


async def write_document(db: OrganizationDatabase, path: str, content: str, limits: MemoryLimits) -> dict[str, Any]:
    return await _upsert(db, path, content, limits, append=False)


async def append_document(db: OrganizationDatabase, path: str, content: str, limits: MemoryLimits) -> dict[str, Any]:
    return await _upsert(db, path, content, limits, append=True)


def _terms(query: str) -> list[str]:
    return _WORD.findall(query)[:32]


_SQLITE_SEARCH = text(
    "SELECT d.path AS path, snippet(memory_fts, 1, :start, :end, '…', 16) AS snippet, bm25(memory_fts) AS rank"
    " FROM memory_fts JOIN memory_documents d ON d.id = memory_fts.rowid"
    " WHERE memory_fts MATCH :match AND d.organization_id = :org ORDER BY rank LIMIT :limit"
)
_POSTGRES_SEARCH = text(
    "SELECT path, ts_headline('simple', content, q, :options) AS snippet, ts_rank(search, q) AS rank"
    " FROM memory_documents, plainto_tsquery('simple', :match) AS q"
    " WHERE organization_id = :org AND search @@ q ORDER BY rank DESC, path LIMIT :limit"
)


async def search_documents(db: OrganizationDatabase, query: str, limit: int) -> dict[str, Any]:
    """Ranked full-text search: every term must occur; snippets mark hits with ** **."""
    terms = _terms(query)
    if not terms:
        return {"query": query, "results": []}
    params: dict[str, Any] = {"org": db.organization_id, "limit": limit}
    if db.dialect == "postgresql":
        statement = _POSTGRES_SEARCH
        params |= {
            "match": " ".join(terms),
            "options": f"StartSel={SNIPPET_START}, StopSel={SNIPPET_END}, MaxWords=24, MinWords=8, MaxFragments=1",
        }
    else:
        statement = _SQLITE_SEARCH
        params |= {"match": " ".join(f'"{term}"' for term in terms), "start": SNIPPET_START, "end": SNIPPET_END}
    async with db.session() as session:
        rows = (await session.execute(statement, params)).all()
    sign = 1.0 if db.dialect == "postgresql" else -1.0  # bm25: lower is better
    results = [{"path": row.path, "snippet": row.snippet, "score": round(sign * float(row.rank), 6)} for row in rows]
    return {"query": query, "results": results}
