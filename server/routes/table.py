"""The route table: every path, its handler and the scope it needs."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from auth.errors import NotFound
from auth.scopes import KEYS_MANAGE, METRICS_READ, RUNTIME
from server.observability.exposition import metrics_endpoint
from server.openapi.document import openapi_route
from server.routes.audit import list_audit
from server.routes.capabilities import capabilities
from server.routes.decisions import explain_key, list_decisions_route
from server.routes.executions import execution_events, get_execution
from server.routes.health import healthz, readyz
from server.routes.integrations import integration_routes
from server.routes.keys import (
    create_key_with_key,
    create_key_with_password,
    get_key,
    list_keys,
    revoke_key,
    rotate_key,
    update_key,
)
from server.routes.routing import PublicRoute, ScopedAppRoute, ScopedRoute
from server.routes.runtime import (
    archive_session,
    create_session,
    get_session,
    invoke,
    list_sessions,
    session_capabilities,
    session_invoke,
)

MCP_PATHS = ("/mcp", "/api/mcp")
# MCP clients probe these after a 401; they answer like the MCP endpoint (DESIGN §3).
OAUTH_PROBE_PATHS = ("/.well-known/", "/register", "/authorize", "/token")


async def no_oauth_here(_scope: Scope, _receive: Receive, _send: Send) -> None:
    raise NotFound()


def oauth_probe_routes() -> list[Route]:
    """The OAuth paths clients probe after a 401 or 403, guarded like the MCP endpoint.

    A key without `runtime` then gets the same 403 and message here as on /mcp, so mcp-remote reports
    "Dynamic Client Registration rejected (HTTP 403): ... Missing required scope: runtime" instead of a 404.
    """
    paths = ["/.well-known/{rest:path}", *(p for p in OAUTH_PROBE_PATHS if not p.endswith("/"))]
    return [ScopedAppRoute(path, no_oauth_here, scope=RUNTIME) for path in paths]


def speaks_jsonrpc(path: str) -> bool:
    if any(path == p or path.startswith(p + "/") for p in MCP_PATHS):
        return True
    return path.startswith(OAUTH_PROBE_PATHS)


def counts_toward_rate_limit(path: str) -> bool:
    """Runtime, MCP and key-management routes count; the audit log and public routes do not (DESIGN §5)."""
    if path == "/capabilities" or path.startswith(("/api/runtime/", "/api/keys")):
        return True
    return any(path == p or path.startswith(p + "/") for p in MCP_PATHS)


def api_routes(mcp_endpoint: ASGIApp) -> list[BaseRoute]:
    return [
        PublicRoute("/healthz", healthz),
        PublicRoute("/readyz", readyz),
        openapi_route(),
        ScopedRoute("/api/runtime/capabilities", capabilities, scope=RUNTIME),
        ScopedRoute("/capabilities", capabilities, scope=RUNTIME),
        ScopedRoute("/api/runtime/tools/{tool_name}", invoke, scope=RUNTIME, methods=["POST"]),
        ScopedRoute("/api/runtime/sessions", create_session, scope=RUNTIME, methods=["POST"]),
        ScopedRoute("/api/runtime/sessions", list_sessions, scope=RUNTIME),
        ScopedRoute("/api/runtime/sessions/{session_id}", get_session, scope=RUNTIME),
        ScopedRoute("/api/runtime/sessions/{session_id}/archive", archive_session, scope=RUNTIME, methods=["POST"]),
        ScopedRoute("/api/runtime/sessions/{session_id}/capabilities", session_capabilities, scope=RUNTIME),
        ScopedRoute(
            "/api/runtime/sessions/{session_id}/tools/{tool_name}", session_invoke, scope=RUNTIME, methods=["POST"]
        ),
        ScopedRoute("/api/runtime/executions/{execution_id}", get_execution, scope=RUNTIME),
        ScopedRoute("/api/runtime/executions/{execution_id}/events", execution_events, scope=RUNTIME),
        *(ScopedAppRoute(path, mcp_endpoint, scope=RUNTIME) for path in MCP_PATHS),
        *oauth_probe_routes(),
        PublicRoute("/api-keys", create_key_with_password, methods=["POST"]),  # HTTP Basic, checked in the route
        ScopedRoute("/api/keys", list_keys, scope=KEYS_MANAGE),
        ScopedRoute("/api/keys", create_key_with_key, scope=KEYS_MANAGE, methods=["POST"]),
        ScopedRoute("/api/keys/{key_id}", get_key, scope=KEYS_MANAGE),
        ScopedRoute("/api/keys/{key_id}", update_key, scope=KEYS_MANAGE, methods=["PATCH"]),
        ScopedRoute("/api/keys/{key_id}", revoke_key, scope=KEYS_MANAGE, methods=["DELETE"]),
        ScopedRoute("/api/keys/{key_id}/rotate", rotate_key, scope=KEYS_MANAGE, methods=["POST"]),
        ScopedRoute("/api/keys/{key_id}/explain", explain_key, scope=KEYS_MANAGE),
        ScopedRoute("/api/audit", list_audit, scope=KEYS_MANAGE),
        *integration_routes(),
        ScopedRoute("/api/audit/decisions", list_decisions_route, scope=KEYS_MANAGE),
        ScopedRoute("/metrics", metrics_endpoint, scope=METRICS_READ),
    ]
