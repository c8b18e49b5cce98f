"""The ASGI app behind /mcp and /api/mcp: a key's session quota, the disabled tools fetched once per request,
and the caller of a stateless tools/call made known to the SDK's ``Mcp-Param`` header check.

Across replicas: a new legacy session is claimed for this replica in the shared directory before
the client learns its id, and released when deleted; a request for a session this replica does not
hold is relayed to its owner (``forwarding.py``); a plain stateless tools/list or tools/call is
answered natively (``stateless.py``); a standalone GET stream starts with a priming
event (``resumable.py``); ``subscriptions/listen`` requests are tracked per key (``listening.py``).
"""

from __future__ import annotations

from typing import Any

from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import Message, Receive, Scope, Send

from auth.errors import send_error
from auth.principal import Principal
from server.mcp.forwarding import SessionForwarder, header
from server.mcp.listening import KeyListeners
from server.mcp.resumable import ResumableSessionManager, priming
from server.mcp.server import DISABLED_TOOLS, mcp_caller
from server.mcp.session_quota import SessionQuota, TooManySessions
from server.mcp.stateless import StatelessFastPath, wants_fast_path
from server.runtime.invocation import Runtime


def opens_legacy_session(scope: Scope) -> bool:
    """A POST without a session id in a handshake protocol generation: the SDK opens a session for it."""
    version = header(scope, b"mcp-protocol-version")
    return scope["method"] == "POST" and (version is None or version in HANDSHAKE_PROTOCOL_VERSIONS)


class McpEndpoint:
    """ASGI app for /mcp and /api/mcp; the lifespan must have entered ``manager.run()``."""

    def __init__(
        self,
        manager: ResumableSessionManager,
        runtime: Runtime,
        quota: SessionQuota,
        forwarder: SessionForwarder,
        listeners: KeyListeners,
        fast_path: StatelessFastPath | None = None,
    ) -> None:
        self.manager = manager
        self.runtime = runtime
        self.quota = quota
        self.forwarder = forwarder
        self.listeners = listeners
        self.fast_path = fast_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = scope.get("user")
        if isinstance(principal, Principal):
            session_id = header(scope, b"mcp-session-id")
            if session_id is None and opens_legacy_session(scope):
                await self._open_session(principal, scope, receive, self._claiming(send, principal))
                return
            if session_id is not None and not self.manager.holds(session_id):
                unanswered = await self.forwarder.relay(scope, receive, send, session_id, principal)
                if unanswered is None:
                    return
                receive = unanswered
            elif session_id is not None:
                self.quota.used(principal.key_id, session_id)
                if scope["method"] == "DELETE":
                    send = self._releasing(send, session_id)
                elif scope["method"] == "GET" and header(scope, b"last-event-id") is None:
                    events = self.manager.session_events(session_id)
                    if events is not None:
                        send = priming(send, events)
        await self._handle(principal, scope, receive, send)

    async def _open_session(self, principal: Principal, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.quota.admit(principal.key_id)
        except TooManySessions as refused:
            await send_error(send, refused, jsonrpc=True)
            return
        opened: str | None = None

        async def noting_send(message: Message) -> None:
            nonlocal opened
            if message["type"] == "http.response.start" and message["status"] < 400:
                opened = next((v.decode("latin-1") for k, v in message["headers"] if k == b"mcp-session-id"), None)
            await send(message)

        try:
            await self._handle(principal, scope, receive, noting_send)
        finally:
            self.quota.answered(principal.key_id, opened)

    async def _handle(self, principal: Any, scope: Scope, receive: Receive, send: Send) -> None:
        if not isinstance(principal, Principal):
            await self.manager.handle_request(scope, receive, send)
            return
        # Fetched once per HTTP request; the handlers find it on the request's scope.
        disabled = scope[DISABLED_TOOLS] = await self.runtime.disabled_tools(principal)
        if self.fast_path is not None and (method := wants_fast_path(scope, self.fast_path.max_body)) is not None:
            handed_back = await self.fast_path(method, principal, disabled, scope, receive, send)
            if handed_back is None:
                return
            receive = handed_back
        if (b"mcp-method", b"subscriptions/listen") in scope["headers"]:
            await self.listeners.track(principal, lambda: self.manager.handle_request(scope, receive, send))
            return
        if (b"mcp-method", b"tools/call") not in scope["headers"]:
            await self.manager.handle_request(scope, receive, send)
            return
        token = mcp_caller.set((principal, disabled))
        try:
            await self.manager.handle_request(scope, receive, send)
        finally:
            mcp_caller.reset(token)

    def _claiming(self, send: Send, principal: Principal) -> Send:
        async def claim_then_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                opened = next((v for k, v in message["headers"] if k == b"mcp-session-id"), None)
                if opened is not None:
                    await self.forwarder.owners.claim(opened.decode("latin-1"), principal.key_id)
            await send(message)

        return claim_then_send

    def _releasing(self, send: Send, session_id: str) -> Send:
        async def release_then_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 300:
                await self.forwarder.owners.release(session_id)
            await send(message)

        return release_then_send
