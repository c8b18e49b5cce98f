"""Which replica owns each legacy MCP session (``mcp_session_owners``), shared through the database.

A replica claims a session when it answers the ``initialize`` that opened it (before the client
sees the id, so no later request can outrun the claim) and releases it when the client deletes
it. Ownership never moves, so lookups are cached; a replica that starts at an address removes
the claims left there by a previous process (those sessions died with it).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from auth.dbtypes import utcnow
from auth.verifier import LRU
from server.mcp.event_log import EventLog
from server.mcp.models import McpSessionEvent, McpSessionOwner


@dataclass(frozen=True, slots=True)
class Owner:
    url: str
    key_id: str


class SessionOwners:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], events: EventLog, *, self_url: str, cache_size: int = 10_000
    ) -> None:
        self._sessions = sessions
        self.events = events
        self.self_url = self_url
        self._cache: LRU[str, Owner] = LRU(cache_size)

    async def claim(self, session_id: str, key_id: str) -> None:
        try:
            async with self._sessions.begin() as session:
                session.add(
                    McpSessionOwner(session_id=session_id, key_id=key_id, owner_url=self.self_url, created_at=utcnow())
                )
        except IntegrityError:  # a 128-bit random id was taken: keep the first claim
            return
        self._cache.put(session_id, Owner(self.self_url, key_id))

    async def owner(self, session_id: str) -> Owner | None:
        cached = self._cache.get(session_id)
        if cached is not None:
            return cached
        async with self._sessions() as session:
            row = await session.get(McpSessionOwner, session_id[:64])
        if row is None:
            return None
        owner = Owner(row.owner_url, row.key_id)
        self._cache.put(session_id, owner)
        return owner

    async def release(self, session_id: str) -> None:
        """The session was deleted, or its owner died: its directory entry and stored events go."""
        self._cache.pop(session_id)
        self.events.forget(session_id)
        async with self._sessions.begin() as session:
            await session.execute(delete(McpSessionOwner).where(col(McpSessionOwner.session_id) == session_id[:64]))

    async def release_previous_process(self) -> None:
        """Sessions claimed at this address before this process started died with that process."""
        mine = select(col(McpSessionOwner.session_id)).where(col(McpSessionOwner.owner_url) == self.self_url)
        async with self._sessions.begin() as session:
            await session.execute(delete(McpSessionEvent).where(col(McpSessionEvent.session_id).in_(mine)))
            await session.execute(delete(McpSessionOwner).where(col(McpSessionOwner.owner_url) == self.self_url))
