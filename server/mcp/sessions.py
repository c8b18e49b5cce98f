"""Open legacy MCP sessions and 2026-07-28 listen streams per key, so a change to a key's tool list
reaches them as list_changed."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable

import anyio
from mcp.server.connection import Connection

from auth.principal import Principal
from server.mcp.listening import KeyListeners

logger = logging.getLogger(__name__)


class McpSessionDirectory:
    """Remembers each legacy session's connection under the key and organization that use it.

    Connections are held weakly: a session that ends simply disappears from here.
    """

    def __init__(self, listeners: KeyListeners) -> None:
        self.listeners = listeners
        self._by_key: dict[str, weakref.WeakValueDictionary[str, Connection]] = {}
        self._organization_keys: dict[str, set[str]] = {}
        self._principals: dict[str, Principal] = {}

    def remember(self, *, session_id: str, principal: Principal, connection: Connection) -> None:
        self._by_key.setdefault(principal.key_id, weakref.WeakValueDictionary())[session_id] = connection
        self._organization_keys.setdefault(principal.organization_id, set()).add(principal.key_id)
        self._principals[principal.key_id] = principal

    def sessions_of(self, key_id: str) -> list[Connection]:
        sessions = self._by_key.get(key_id)
        if sessions is None:
            return []
        connections = list(sessions.values())
        if not connections:
            del self._by_key[key_id]
            self._principals.pop(key_id, None)
            for keys in self._organization_keys.values():
                keys.discard(key_id)
        return connections

    async def notify_keys(self, key_ids: Iterable[str]) -> int:
        """Sends notifications/tools/list_changed to every open session of these keys."""
        sent = 0
        for key_id in key_ids:
            await self.listeners.notify(key_id)
            for connection in self.sessions_of(key_id):
                try:
                    await connection.send_tool_list_changed()
                    sent += 1
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    logger.debug("session of key %s closed before list_changed", key_id)
        return sent

    async def notify_organization(self, organization_id: str, affects: Callable[[Principal], bool]) -> int:
        """Notifies the organization's keys whose visible tools ``affects`` says may have changed."""
        principals = [
            self._principals[k] for k in self._organization_keys.get(organization_id, ()) if k in self._principals
        ]
        principals += self.listeners.principals(organization_id)
        return await self.notify_keys({p.key_id for p in principals if affects(p)})
