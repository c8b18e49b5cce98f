"""Open legacy MCP sessions per key, so a change to a key can reach them as list_changed."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable

import anyio
from mcp.server.connection import Connection

logger = logging.getLogger(__name__)


class McpSessionDirectory:
    """Remembers each legacy session's connection under the key and organization that use it.

    Connections are held weakly: a session that ends simply disappears from here.
    """

    def __init__(self) -> None:
        self._by_key: dict[str, weakref.WeakValueDictionary[str, Connection]] = {}
        self._organization_keys: dict[str, set[str]] = {}

    def remember(self, *, session_id: str, key_id: str, organization_id: str, connection: Connection) -> None:
        self._by_key.setdefault(key_id, weakref.WeakValueDictionary())[session_id] = connection
        self._organization_keys.setdefault(organization_id, set()).add(key_id)

    def sessions_of(self, key_id: str) -> list[Connection]:
        sessions = self._by_key.get(key_id)
        if sessions is None:
            return []
        connections = list(sessions.values())
        if not connections:
            del self._by_key[key_id]
            for keys in self._organization_keys.values():
                keys.discard(key_id)
        return connections

    async def notify_keys(self, key_ids: Iterable[str]) -> int:
        """Sends notifications/tools/list_changed to every open session of these keys."""
        sent = 0
        for key_id in key_ids:
            for connection in self.sessions_of(key_id):
                try:
                    await connection.send_tool_list_changed()
                    sent += 1
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    logger.debug("session of key %s closed before list_changed", key_id)
        return sent

    async def notify_organization(self, organization_id: str) -> int:
        return await self.notify_keys(list(self._organization_keys.get(organization_id, ())))
