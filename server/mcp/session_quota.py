"""Legacy MCP sessions per key: a cap (429 like streams) and, under memory pressure, idle eviction.

A legacy session costs a server task and its buffers for as long as it lives (up to
``mcp_session_idle_seconds``); the attack run opened 1,160 in 15 s with one key. Each key may
hold ``max_mcp_sessions_per_key``; the next initialize gets 429 ``too_many_sessions``. When the
whole process holds ``max_mcp_sessions``, the least recently used session is closed to make room
(its client gets 404 and re-initializes, as after an idle timeout) instead of refusing everyone.

The SDK's session manager owns the sessions; which ones are still open is read from it
(``_server_instances``, the only place that knows), and eviction uses its own discard path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from auth.errors import RateLimited

logger = logging.getLogger(__name__)


class TooManySessions(RateLimited):
    code = "too_many_sessions"

    def __init__(self, limit: int) -> None:
        super().__init__(f"Too many open MCP sessions for this API key (limit {limit})", headers={"Retry-After": "1"})


class SessionQuota:
    def __init__(
        self,
        manager: StreamableHTTPSessionManager,
        *,
        per_key: int,
        total: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._manager = manager
        self.per_key = per_key
        self.total = total
        self._monotonic = monotonic
        self._last_used: dict[str, dict[str, float]] = {}  # key id → session id → last request
        self._opening: dict[str, int] = {}  # key id → initialize requests admitted, not yet answered

    def _open(self, session_id: str) -> bool:
        return session_id in self._manager._server_instances

    def _prune(self) -> int:
        open_count = 0
        for key_id in list(self._last_used):
            sessions = {sid: seen for sid, seen in self._last_used[key_id].items() if self._open(sid)}
            if sessions:
                self._last_used[key_id] = sessions
                open_count += len(sessions)
            else:
                del self._last_used[key_id]
        return open_count

    def open_sessions(self, key_id: str) -> int:
        return sum(1 for sid in self._last_used.get(key_id, {}) if self._open(sid))

    async def admit(self, key_id: str) -> None:
        """Before a new session is opened: 429 at the key's cap; at the process's cap, evict the idlest."""
        open_total = self._prune() + sum(self._opening.values())
        if len(self._last_used.get(key_id, {})) + self._opening.get(key_id, 0) >= self.per_key:
            raise TooManySessions(self.per_key)
        self._opening[key_id] = self._opening.get(key_id, 0) + 1
        while open_total >= self.total and await self._evict_idlest():
            open_total -= 1

    def answered(self, key_id: str, session_id: str | None) -> None:
        """The admitted opening request is done; ``session_id`` when it opened a session."""
        left = self._opening.get(key_id, 1) - 1
        if left > 0:
            self._opening[key_id] = left
        else:
            self._opening.pop(key_id, None)
        if session_id is not None:
            self._last_used.setdefault(key_id, {})[session_id] = self._monotonic()

    def used(self, key_id: str, session_id: str) -> None:
        sessions = self._last_used.get(key_id)
        if sessions is not None and session_id in sessions:
            sessions[session_id] = self._monotonic()

    async def _evict_idlest(self) -> bool:
        candidates = [(seen, key_id, sid) for key_id, s in self._last_used.items() for sid, seen in s.items()]
        if not candidates:
            return False
        _seen, key_id, session_id = min(candidates)
        del self._last_used[key_id][session_id]
        transport = self._manager._server_instances.get(session_id)
        if transport is not None:
            logger.info("closing idle MCP session of key %s to make room", key_id)
            await self._manager._discard_session(session_id, transport)
        return True
