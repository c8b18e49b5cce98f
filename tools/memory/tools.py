"""The built-in memory tools, kind ``memory``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tools.context import ToolContext
from tools.memory import store
from tools.memory.paths import DirectoryPath, DocumentPath
from tools.memory.store import MemoryLimits
from tools.registry import Tool


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LsInput(_Input):
    path: DirectoryPath = Field(default="/", description="Directory to list, e.g. / or /topics")


class ReadInput(_Input):
    path: DocumentPath = Field(description="Absolute document path, e.g. /MEMORY.md")


class WriteInput(_Input):
    path: DocumentPath = Field(description="Absolute document path, e.g. /topics/<topic>.md")
    content: str = Field(description="UTF-8 text; replaces the whole document")


class AppendInput(_Input):
    path: DocumentPath = Field(description="Absolute document path, e.g. /daily/YYYY-MM-DD.md")
    content: str = Field(description="UTF-8 text added to the end of the document (created when missing)")


class SearchInput(_Input):
    query: str = Field(min_length=1, max_length=500, description="Words to find; every word must occur")
    limit: int = Field(default=10, ge=1, le=50, description="Most results to return")


def memory_tools(limits: MemoryLimits) -> list[Tool]:
    async def ls(ctx: ToolContext, args: LsInput) -> dict[str, Any]:
        return await store.list_directory(ctx.db, args.path)

    async def read(ctx: ToolContext, args: ReadInput) -> dict[str, Any]:
        return await store.read_document(ctx.db, args.path)

    async def write(ctx: ToolContext, args: WriteInput) -> dict[str, Any]:
        return await store.write_document(ctx.db, args.path, args.content, limits)

    async def append(ctx: ToolContext, args: AppendInput) -> dict[str, Any]:
        return await store.append_document(ctx.db, args.path, args.content, limits)

    async def search(ctx: ToolContext, args: SearchInput) -> dict[str, Any]:
        return await store.search_documents(ctx.db, args.query, args.limit)

    common: dict[str, Any] = {"kind": "memory"}
    reader: dict[str, Any] = {**common, "read_only": True, "idempotent": True}
    return [
        Tool("memory_ls", "List the documents and directories under a memory path.", LsInput, ls, **reader),
        Tool("memory_read", "Read one memory document.", ReadInput, read, **reader),
        Tool(
            "memory_write",
            "Create or replace a memory document (atomic).",
            WriteInput,
            write,
            **common,
            idempotent=True,
            destructive=True,
        ),
        Tool(
            "memory_append",
            "Append text to a memory document, creating it when missing (atomic under concurrency).",
            AppendInput,
            append,
            **common,
        ),
        Tool(
            "memory_search",
            "Full-text search over the organization's memory, ranked, with snippets.",
            SearchInput,
            search,
            **reader,
        ),
    ]
