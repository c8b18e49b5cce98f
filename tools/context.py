"""What a tool handler gets: who is calling, where to report, and database access bound to one organization."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

LogLevel = Literal["debug", "info", "notice", "warning", "error"]
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "notice", "warning", "error")
Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


class ToolError(Exception):
    """A failure whose message the caller should see: the execution fails with exactly this message."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class OrganizationDatabase:
    """Database access for one organization. It has no way to name another organization:
    data functions that take it (such as the memory store's) filter every statement by
    ``organization_id``."""

    organization_id: str
    _sessions: async_sessionmaker[AsyncSession] = field(repr=False)

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session inside one transaction, committed on success and rolled back on error."""
        return self._sessions.begin()

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session for reads (no explicit transaction)."""
        return self._sessions()

    @property
    def dialect(self) -> str:
        bind = self._sessions.kw["bind"]
        return str(bind.dialect.name)


@dataclass(frozen=True, slots=True)
class ToolContext:
    organization_id: str
    key_id: str | None
    session_id: str
    execution_id: str
    db: OrganizationDatabase
    _emit: Emit = field(repr=False)

    async def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Reports progress: persisted as a `progress` event and forwarded to MCP progress notifications."""
        if not all(math.isfinite(value) for value in (done, total) if value is not None):
            raise ToolError("Progress values must be finite numbers (NaN and Infinity are not JSON numbers)")
        await self._emit("progress", {"progress": done, "total": total, "message": message})

    async def log(self, level: str, message: str) -> None:
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {level!r} (known: {', '.join(LOG_LEVELS)})")
        await self._emit("log", {"level": level, "message": message})
