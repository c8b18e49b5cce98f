"""The MCP endpoint: the SDK's Streamable HTTP transport over capgate's per-key tools.

Both protocol generations are served by one session manager: stateless 2026-07-28
requests and legacy initialize-handshake sessions. Every HTTP request has already
been authenticated by AuthMiddleware; handlers read the principal of *this* request
from ``ctx.request`` (a legacy session's server loop outlives the request that opened
it, so context variables would name the opening request instead).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

import mcp_types as types
from mcp.server import Server
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions
from mcp.server.transport_security import TransportSecuritySettings

from auth.principal import Principal
from server.mcp.event_log import EventLog
from server.mcp.resumable import ResumableSessionManager
from server.mcp.sessions import McpSessionDirectory
from server.mcp.tool_calls import McpToolCalls
from server.observability.mcp import McpObservation
from server.observability.metrics import Metrics
from server.observability.observed import observed
from server.runtime.invocation import Runtime
from server.settings import Settings

SERVER_NAME = "capgate"
# The caller of the stateless tools/call being handled, and its organization's disabled tools:
# set by McpEndpoint, read by the SDK's pre-dispatch Mcp-Param header check (same task).
DISABLED_TOOLS = "capgate.disabled_tools"
mcp_caller: ContextVar[tuple[Principal, frozenset[str]] | None] = ContextVar("capgate_mcp_caller", default=None)


def disabled_of(ctx: ServerRequestContext[Any, Any]) -> frozenset[str] | None:
    """The disabled tools McpEndpoint fetched for the HTTP request carrying this message."""
    request = ctx.request
    return request.scope.get(DISABLED_TOOLS) if request is not None else None


def principal_of(ctx: ServerRequestContext[Any, Any]) -> Principal:
    request = ctx.request
    user = request.scope.get("user") if request is not None else None
    if not isinstance(user, Principal):  # AuthMiddleware guarantees one; this guards a mis-mounted endpoint
        raise RuntimeError("MCP request without an authenticated principal")
    return user


class SessionTracker:
    """Server middleware: remembers which key uses which legacy session (for list_changed)."""

    def __init__(self, directory: McpSessionDirectory) -> None:
        self.directory = directory

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        request = ctx.request
        session_id = request.headers.get("mcp-session-id") if request is not None else None
        # ServerSession keeps its Connection private; the connection is what outlives this request.
        connection = getattr(ctx.session, "_connection", None)
        if session_id and connection is not None:
            principal = principal_of(ctx)
            self.directory.remember(session_id=session_id, principal=principal, connection=connection)
        return await call_next(ctx)


class CapgateMcpServer(Server[Any]):
    """Advertises tools.listChanged to legacy sessions: capgate sends it when a key's grant changes."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True), experimental_capabilities, extensions
        )


def tool_input_schema_lookup(runtime: Runtime) -> Callable[[str], Mapping[str, Any] | None]:
    """The schema the SDK checks ``Mcp-Param-*`` headers against, for tools the caller is listed.

    Without it the SDK runs the whole tools/list handler and serializes every visible tool on
    each stateless tools/call just to find one schema. The answer is the listing's: None (no
    validation) for a tool this caller would not see.
    """

    def lookup(name: str) -> Mapping[str, Any] | None:
        caller = mcp_caller.get()
        if caller is None:
            return None
        principal, disabled = caller
        tool = runtime.tools.find(principal, name, disabled)
        return tool.parameters if tool is not None else None

    return lookup


def build_mcp_server(
    runtime: Runtime,
    directory: McpSessionDirectory,
    calls: McpToolCalls,
    *,
    metrics: Metrics,
) -> Server[Any]:

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return await calls.listing(principal_of(ctx), disabled_of(ctx))

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(done, total, message)

        return await calls.call(
            principal_of(ctx),
            params.name,
            dict(params.arguments or {}),
            disabled=disabled_of(ctx),
            observation=observed(ctx.request.scope) if ctx.request is not None else None,
            on_progress=on_progress,
        )

    server = CapgateMcpServer(
        SERVER_NAME,
        version="0.1.0",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        get_tool_input_schema=tool_input_schema_lookup(runtime),
        on_subscriptions_listen=directory.listeners.listen,
    )
    server.middleware.append(SessionTracker(directory))
    server.middleware.append(McpObservation(metrics, runtime.tools))
    return server


def build_session_manager(server: Server[Any], settings: Settings, events: EventLog) -> ResumableSessionManager:
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=settings.allowed_hosts,
        allowed_origins=settings.allowed_origins,
    )
    return ResumableSessionManager(
        server,
        security_settings=security,
        events=events,
        session_idle_timeout=settings.mcp_session_idle_seconds,
        max_request_body_size=settings.max_request_body_bytes,
        max_sessions=None,  # SessionQuota caps sessions per key and evicts the idlest at max_mcp_sessions
    )
