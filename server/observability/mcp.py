"""MCP server middleware: the operation-duration metric and the decision for MCP methods other than tools/call.

It runs inside the SDK's own OpenTelemetry middleware, so the span that is current here is the
MCP server span (``{mcp.method.name} {target}``, parent from ``params._meta``), and the
``capgate.*`` attributes of a decision land on it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult
from pydantic import ValidationError
from starlette.types import Scope

from auth.principal import Principal
from auth.scopes import RUNTIME
from server.observability.metrics import Metrics
from server.observability.observed import observed
from tools.access import ALLOWED
from tools.registry import ToolRegistry

TOOLS_CALL = "tools/call"
UNKNOWN_TOOL_LABEL = "_unknown"


def is_tool_error(result: HandlerResult) -> bool:
    if isinstance(result, CallToolResult):
        return bool(result.is_error)
    return isinstance(result, dict) and result.get("isError") is True


class McpObservation:
    def __init__(self, metrics: Metrics, tools: ToolRegistry) -> None:
        self.metrics = metrics
        self.tools = tools

    def tool_label(self, method: str, params: Mapping[str, Any] | None) -> str:
        if method != TOOLS_CALL:
            return ""
        name = params.get("name") if params else None
        return name if isinstance(name, str) and name in self.tools else UNKNOWN_TOOL_LABEL

    def decide_method(self, scope: Scope, method: str) -> None:
        """Methods other than tools/call (whose decision is the runtime's) are allowed by the route's scope."""
        if method == TOOLS_CALL:
            return
        principal = scope.get("user")
        request = observed(scope)
        if request is not None and isinstance(principal, Principal):
            request.decide(
                allowed=True, reason=ALLOWED, rule=f"route needs scope {RUNTIME}", route=method, principal=principal
            )

    def done(self, method: str, params: Mapping[str, Any] | None, error_type: str, started: float) -> None:
        self.metrics.mcp_operation_done(
            method, self.tool_label(method, params), error_type, time.perf_counter() - started
        )

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        started = time.perf_counter()
        if ctx.request_id is not None and ctx.request is not None:
            self.decide_method(ctx.request.scope, ctx.method)
        error_type = ""
        try:
            result = await call_next(ctx)
        except MCPError as error:
            error_type = str(error.error.code)
            raise
        except ValidationError:
            error_type = str(INVALID_PARAMS)
            raise
        except Exception as error:
            error_type = type(error).__qualname__
            raise
        finally:
            if error_type:
                self.done(ctx.method, ctx.params, error_type, started)
        self.done(
            ctx.method, ctx.params, "tool_error" if ctx.method == TOOLS_CALL and is_tool_error(result) else "", started
        )
        return result
