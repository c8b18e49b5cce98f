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


Grant = tuple[tuple[str, ...], tuple[str, ...] | None, bool, int | None]
"""What decides a key's visible tools: scopes, allowed tools, revoked, expiry (seconds since the epoch)."""


def principal_grant(principal: Principal) -> Grant:
    return (principal.key_scopes, principal.allowed_tools, False, principal.access_token.expires_at)


class McpSessionDirectory:
    """Remembers each legacy session's connection under the key and organization that use it.

    Connections are held weakly: a session that ends simply disappears from here.
    """

    def __init__(self, listeners: KeyListeners) -> None:
        self.listeners = listeners
        self._by_key: dict[str, weakref.WeakValueDictionary[str, Connection]] = {}
        self._organization_keys: dict[str, set[str]] = {}
        self._principals: dict[str, Principal] = {}
        self._announced: dict[str, Grant] = {}

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
            self._announced.pop(key_id, None)
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

    async def grant_changed(self, key_id: str, grant: Grant) -> None:
        """A key's row changed: its sessions and listeners hear of it only if its grant differs from
        the one they know (the grant they connected with, or the last one announced to them)."""
        principal = self._principals.get(key_id) or self.listeners.principal(key_id)
        if principal is None:
            return
        if self._announced.get(key_id, principal_grant(principal)) != grant:
            self._announced[key_id] = grant
            await self.notify_keys([key_id])

    async def notify_organization(
        self, organization_id: str, affects: Callable[[Principal], bool] = lambda _principal: True
    ) -> int:
        """Notifies the organization's keys whose visible tools ``affects`` says may have changed (default: all)."""
        principals = [
            self._principals[k] for k in self._organization_keys.get(organization_id, ()) if k in self._principals
        ]
        principals += self.listeners.principals(organization_id)
        return await self.notify_keys({p.key_id for p in principals if affects(p)})
