"""The organization's memory documents, through the tool's org-bound session (``ctx.db``): every
statement here is limited to the calling organization by ``tools.database``, not by hand.

A write or append is one transaction: the organization's lock (so concurrent writers cannot
overshoot the quota together), one upsert (append as ``content || excluded.content`` with the
size limit in the statement), the checks that need the result (quota, a path that is both a
document and a directory), and the document's words for search.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from auth.dbtypes import dialect_insert, iso, utcnow
from tools.context import ToolError
from tools.database import OrganizationDatabase, OrganizationSession
from tools.memory import text
from tools.memory.models import DOCUMENTS, TERMS, MemoryDocument, MemoryTerm

_BATCH = 500


def batched(items: list[Any], size: int) -> list[list[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


@dataclass(frozen=True, slots=True)
class MemoryLimits:
    max_document_bytes: int
    organization_quota_bytes: int


def _under(prefix: str) -> Any:
    """Paths starting with ``prefix``, compared exactly (``LIKE`` ignores case on SQLite)."""
    return func.substr(col(MemoryDocument.path), 1, len(prefix)) == prefix


async def list_directory(db: OrganizationDatabase, path: str) -> dict[str, Any]:
    prefix = path.rstrip("/") + "/"
    query = (
        select(col(MemoryDocument.path), col(MemoryDocument.size), col(MemoryDocument.updated_at))
        .where(_under(prefix))
        .order_by(col(MemoryDocument.path))
    )
    async with db.session() as session:
        rows = await session.rows(query)
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
        col(MemoryDocument.path) == path
    )
    async with db.session() as session:
        found = await session.rows(query)
    if not found:
        raise ToolError(f"No such document: {path}")
    content, size, updated_at = found[0]
    return {"path": path, "content": content, "size": size, "updatedAt": iso(updated_at)}


def _ancestors(path: str) -> list[str]:
    segments = path.split("/")[1:-1]
    return ["/" + "/".join(segments[: depth + 1]) for depth in range(len(segments))]


async def _check_shape(session: OrganizationSession, path: str) -> None:
    """A path names a document or a directory, never both."""
    ancestors = _ancestors(path)
    if ancestors:
        query = select(col(MemoryDocument.path)).where(col(MemoryDocument.path).in_(ancestors))
        clash = await session.rows(query.order_by(col(MemoryDocument.path)).limit(1))
        if clash:
            raise ToolError(f"{clash[0][0]} is a document, so it cannot also be a directory")
    if await session.rows(select(col(MemoryDocument.path)).where(_under(path + "/")).limit(1)):
        raise ToolError(f"{path} is a directory, so it cannot also be a document")


async def _check_quota(session: OrganizationSession, limits: MemoryLimits) -> None:
    used = await session.scalar(select(func.coalesce(func.sum(col(MemoryDocument.size)), 0)))
    if int(used or 0) > limits.organization_quota_bytes:
        raise ToolError(f"Memory quota of {limits.organization_quota_bytes} bytes for this organization is exhausted")


async def _index(session: OrganizationSession, document_id: int, path: str, content: str) -> None:
    counts, length = text.document_words(path, content)
    await session.execute(TERMS.delete().where(TERMS.c.document_id == document_id))
    rows = [
        {"organization_id": session.organization_id, "document_id": document_id, "word": word}
        | {"occurrences": occurrences, "word_count": length}
        for word, occurrences in sorted(counts.items())
    ]
    for batch in batched(rows, _BATCH):
        await session.insert_many(TERMS.insert(), batch)
    table = DOCUMENTS
    await session.execute(table.update().where(table.c.id == document_id).values(word_count=length))


async def _upsert(
    db: OrganizationDatabase, path: str, content: str, limits: MemoryLimits, *, append: bool
) -> dict[str, Any]:
    size = len(content.encode("utf-8"))
    if size > limits.max_document_bytes:
        raise ToolError(f"Document would exceed {limits.max_document_bytes} bytes")
    now = utcnow()
    table = DOCUMENTS
    async with db.transaction() as session:
        await session.lock_organization()
        statement = dialect_insert(db.dialect, table).values(
            organization_id=db.organization_id, path=path, content=content, size=size, created_at=now, updated_at=now
        )
        if append:
            new_size = table.c.size + statement.excluded.size
            changes = {"content": table.c.content + statement.excluded.content, "size": new_size, "updated_at": now}
            statement = statement.on_conflict_do_update(
                index_elements=["organization_id", "path"], set_=changes, where=new_size <= limits.max_document_bytes
            )
        else:
            changes = {"content": statement.excluded.content, "size": statement.excluded.size, "updated_at": now}
            statement = statement.on_conflict_do_update(index_elements=["organization_id", "path"], set_=changes)
        written = await session.rows(statement.returning(table.c.id, table.c.size, table.c.content))
        if not written:
            raise ToolError(f"Document would exceed {limits.max_document_bytes} bytes")
        document_id, written_size, written_content = written[0]
        await _check_shape(session, path)
        await _check_quota(session, limits)
        await _index(session, document_id, path, written_content)
    return {"path": path, "size": written_size}


async def write_document(db: OrganizationDatabase, path: str, content: str, limits: MemoryLimits) -> dict[str, Any]:
    return await _upsert(db, path, content, limits, append=False)


async def append_document(db: OrganizationDatabase, path: str, content: str, limits: MemoryLimits) -> dict[str, Any]:
    return await _upsert(db, path, content, limits, append=True)


async def search_documents(db: OrganizationDatabase, query: str, limit: int) -> dict[str, Any]:
    """Every query word must occur; ranked by BM25 over this organization's documents (``tools/memory/text.py``)."""
    wanted = text.query_words(query)
    if not wanted:
        return {"query": query, "results": []}
    async with db.session() as session:
        hits = await session.rows(
            select(
                col(MemoryTerm.document_id),
                col(MemoryTerm.word),
                col(MemoryTerm.occurrences),
                col(MemoryTerm.word_count),
            ).where(col(MemoryTerm.word).in_(wanted))
        )
        counts: dict[int, dict[str, int]] = defaultdict(dict)
        lengths: dict[int, int] = {}
        frequency: dict[str, int] = defaultdict(int)
        for document_id, word, occurrences, word_count in hits:
            counts[document_id][word] = occurrences
            lengths[document_id] = word_count
            frequency[word] += 1
        matching = [document_id for document_id, found in counts.items() if len(found) == len(wanted)]
        if not matching:
            return {"query": query, "results": []}
        documents, words = (
            await session.rows(select(func.count(), func.coalesce(func.sum(col(MemoryDocument.word_count)), 0)))
        )[0]
        average = int(words) / max(int(documents), 1)
        paths: dict[int, str] = {}
        for batch in batched(sorted(matching), _BATCH):
            found = await session.rows(
                select(col(MemoryDocument.id), col(MemoryDocument.path)).where(col(MemoryDocument.id).in_(batch))
            )
            paths |= dict(found)
        scored = sorted(
            (-text.bm25(counts[d], lengths[d], frequency, int(documents), average), paths[d], d)
            for d in matching
            if d in paths
        )[:limit]
        top = [document_id for _, _, document_id in scored]
        contents: dict[int, str] = dict(
            await session.rows(
                select(col(MemoryDocument.id), col(MemoryDocument.content)).where(col(MemoryDocument.id).in_(top))
            )
        )
    results = [
        {"path": path, "snippet": text.snippet(contents.get(document_id, ""), wanted), "score": -negative + 0.0}
        for negative, path, document_id in scored
    ]
    return {"query": query, "results": results}
