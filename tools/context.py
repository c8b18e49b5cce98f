"""What a tool handler gets: who is calling, where to report, and database access bound to one organization
(``ctx.db``, see ``tools/database.py``)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from tools.database import OrganizationDatabase

LogLevel = Literal["debug", "info", "notice", "warning", "error"]
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "notice", "warning", "error")
Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


class ToolError(Exception):
    """A failure whose message the caller should see: the execution fails with exactly this message."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ToolContext:
    organization_id: str
    key_id: str | None
    session_id: str
    execution_id: str
    db: OrganizationDatabase
    _emit: Emit = field(repr=False)
    connected_account_id: str | None = None

    async def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Reports progress: persisted as a `progress` event and forwarded to MCP progress notifications."""
        if not all(math.isfinite(value) for value in (done, total) if value is not None):
            raise ToolError("Progress values must be finite numbers (NaN and Infinity are not JSON numbers)")
        await self._emit("progress", {"progress": done, "total": total, "message": message})

    async def log(self, level: str, message: str) -> None:
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {level!r} (known: {', '.join(LOG_LEVELS)})")
        await self._emit("log", {"level": level, "message": message})
