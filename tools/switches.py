"""Per-organization enable/disable of tools, with an in-process cache.

Every tool is enabled unless the organization has a ``tool_settings`` row saying otherwise.
Listing tools runs on every MCP request, so the set of disabled tools per organization is
cached for ``ttl`` seconds: a change made in this process (``set_enabled``) drops the entry at
once; a change made by another process (the CLI, another replica) arrives through
``tool_setting_feed`` within about a quarter of a second, and ``ttl`` is the backstop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from auth.changes import publish_change
from auth.dbtypes import database_now, dialect_insert
from auth.loads import LoadGuard
from auth.store import bump_policy_revisions
from auth.watcher import ChangeFeed, ChangeListener
from tools.models import ToolSetting


async def disabled_tools(session: AsyncSession, *, organization_id: str) -> frozenset[str]:
    query = select(col(ToolSetting.tool_name)).where(
        col(ToolSetting.organization_id) == organization_id,
        col(ToolSetting.enabled).is_(False),
    )
    return frozenset((await session.execute(query)).scalars())


async def store_tool_enabled(session: AsyncSession, *, organization_id: str, tool_name: str, enabled: bool) -> None:
    now = await database_now(session)
    values = {"organization_id": organization_id, "tool_name": tool_name, "enabled": enabled, "updated_at": now}
    statement = dialect_insert(session, ToolSetting).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["organization_id", "tool_name"], set_={"enabled": enabled, "updated_at": now}
    )
    await session.execute(statement)
    await bump_policy_revisions(session, organization_id=organization_id, now=now)
    await publish_change(session, "tool_setting", id=tool_name, organization_id=organization_id)


class ToolSwitches:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, ttl: float) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._loads: LoadGuard[str] = LoadGuard()

    async def disabled(self, organization_id: str) -> frozenset[str]:
        cached = self._cache.get(organization_id)
        now = time.monotonic()
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        token = self._loads.start(organization_id)
        try:
            async with self._sessions() as session:
                names = await disabled_tools(session, organization_id=organization_id)
        except BaseException:
            self._loads.finish(organization_id, token)
            raise
        if self._loads.finish(organization_id, token):
            self._cache[organization_id] = (now, names)
        return names

    def invalidate(self, organization_id: str | None = None) -> None:
        if organization_id is None:
            self._cache.clear()
            self._loads.invalidate_all()
        else:
            self._cache.pop(organization_id, None)
            self._loads.invalidate(organization_id)

    async def set_enabled(self, organization_id: str, tool_name: str, enabled: bool) -> None:
        async with self._sessions.begin() as session:
            await store_tool_enabled(session, organization_id=organization_id, tool_name=tool_name, enabled=enabled)
        self.invalidate(organization_id)


def tool_setting_feed(
    sessions: async_sessionmaker[AsyncSession], listeners: Sequence[ChangeListener[ToolSetting]], *, interval: float
) -> ChangeFeed[ToolSetting]:
    """Enable/disable changes made by any process, so this one drops its cached set at once."""
    return ChangeFeed(
        sessions,
        query=lambda since: select(ToolSetting).where(col(ToolSetting.updated_at) >= since),
        convert=lambda row: row,
        identity=lambda setting: (setting.organization_id, setting.tool_name),
        updated_at=lambda setting: setting.updated_at,
        listeners=listeners,
        interval=interval,
    )
