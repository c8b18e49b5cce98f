"""The ASGI app behind /mcp and /api/mcp: a key's session quota, the disabled tools fetched once per request,
and the caller of a stateless tools/call made known to the SDK's ``Mcp-Param`` header check."""

from __future__ import annotations

from typing import Any

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import Message, Receive, Scope, Send

from auth.errors import send_error
from auth.principal import Principal
from server.mcp.server import DISABLED_TOOLS, mcp_caller
from server.mcp.session_quota import SessionQuota, TooManySessions
from server.runtime.invocation import Runtime


def _header(scope: Scope, name: bytes) -> str | None:
    return next((value.decode("latin-1") for key, value in scope["headers"] if key == name), None)


def opens_legacy_session(scope: Scope) -> bool:
    """A POST without a session id in a handshake protocol generation: the SDK opens a session for it."""
    version = _header(scope, b"mcp-protocol-version")
    return scope["method"] == "POST" and (version is None or version in HANDSHAKE_PROTOCOL_VERSIONS)


class McpEndpoint:
    """ASGI app for /mcp and /api/mcp; the lifespan must have entered ``manager.run()``."""

    def __init__(self, manager: StreamableHTTPSessionManager, runtime: Runtime, quota: SessionQuota) -> None:
        self.manager = manager
        self.runtime = runtime
        self.quota = quota

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = scope.get("user")
        if isinstance(principal, Principal):
            session_id = _header(scope, b"mcp-session-id")
            if session_id is not None:
                self.quota.used(principal.key_id, session_id)
            elif opens_legacy_session(scope):
                await self._open_session(principal, scope, receive, send)
                return
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
        if (b"mcp-method", b"tools/call") not in scope["headers"]:
            await self.manager.handle_request(scope, receive, send)
            return
        token = mcp_caller.set((principal, disabled))
        try:
            await self.manager.handle_request(scope, receive, send)
        finally:
            mcp_caller.reset(token)
