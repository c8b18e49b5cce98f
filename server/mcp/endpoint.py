"""The ASGI app in front of the SDK's session manager for /mcp and /api/mcp.

Per HTTP request: claim a new legacy session for this replica, relay a request for another
replica's session to its owner, prime a standalone GET stream, track ``subscriptions/listen``
requests per key, and hand the caller of a stateless tools/call to the SDK's header check.
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from auth.principal import Principal
from server.mcp.forwarding import SessionForwarder, header
from server.mcp.listening import KeyListeners
from server.mcp.resumable import ResumableSessionManager, priming
from server.mcp.server import DISABLED_TOOLS, tools_call_caller
from server.runtime.invocation import Runtime


class McpEndpoint:
    """ASGI app for /mcp and /api/mcp; the lifespan must have entered ``manager.run()``.

    Legacy sessions are claimed in the shared directory as they open (before the client learns
    the id) and released when deleted; a request for a session this replica does not hold is
    relayed to its owner (``server/mcp/forwarding.py``).
    """

    def __init__(
        self,
        manager: ResumableSessionManager,
        runtime: Runtime,
        forwarder: SessionForwarder,
        listeners: KeyListeners,
    ) -> None:
        self.manager = manager
        self.runtime = runtime
        self.forwarder = forwarder
        self.listeners = listeners

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = scope.get("user")
        if not isinstance(principal, Principal):
            await self.manager.handle_request(scope, receive, send)
            return
        session_id = header(scope, b"mcp-session-id")
        if session_id is None:
            send = self._claiming(send, principal)
        elif not self.manager.holds(session_id):
            unanswered = await self.forwarder.relay(scope, receive, send, session_id, principal)
            if unanswered is None:
                return
            receive = unanswered
        elif scope["method"] == "DELETE":
            send = self._releasing(send, session_id)
        elif scope["method"] == "GET" and header(scope, b"last-event-id") is None:
            events = self.manager.session_events(session_id)
            if events is not None:
                send = priming(send, events)
        # Fetched once per HTTP request; the handlers find it on the request's scope.
        disabled = scope[DISABLED_TOOLS] = await self.runtime.disabled_tools(principal)
        if (b"mcp-method", b"subscriptions/listen") in scope["headers"]:
            await self.listeners.track(principal, lambda: self.manager.handle_request(scope, receive, send))
            return
        if (b"mcp-method", b"tools/call") not in scope["headers"]:
            await self.manager.handle_request(scope, receive, send)
            return
        token = tools_call_caller.set((principal, disabled))
        try:
            await self.manager.handle_request(scope, receive, send)
        finally:
            tools_call_caller.reset(token)

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
