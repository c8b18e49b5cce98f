"""What an MCP tools/list and tools/call answer for one caller, whichever path carried the request.

Both the SDK's handlers (``server.py``) and the native stateless path (``stateless.py``) call these,
so a tool's description, its result and every error a caller can see are built in one place.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types

from auth.errors import CapgateError, InvalidRequest, NotFound, RevokedApiKey
from auth.principal import Principal
from auth.streams import StreamRegistry, StreamTimeLimit
from server.integrations.tools import mcp_input_schema
from server.runtime.invocation import Runtime
from server.runtime.telemetry import DecisionObserver
from tools.accounts import AccountRequired
from tools.registry import Tool

Progress = Callable[[float, float | None, str | None], Awaitable[None]]


def mcp_tool(tool: Tool) -> types.Tool:
    return types.Tool(
        name=tool.name,
        description=tool.description,
        input_schema=mcp_input_schema(tool),
        annotations=types.ToolAnnotations(
            read_only_hint=tool.read_only,
            idempotent_hint=tool.idempotent,
            destructive_hint=tool.destructive,
            open_world_hint=tool.kind == "integration",
        ),
    )


class McpToolDescriptions:
    """Each tool as the SDK describes it, built once per tool: tools/list runs on every MCP request.
    Built with the MCP server; the registry is fixed for the app's life, so the cache is bounded by it."""

    def __init__(self) -> None:
        self._described: dict[str, tuple[Tool, types.Tool]] = {}

    def __call__(self, tool: Tool) -> types.Tool:
        entry = self._described.get(tool.name)
        if entry is None or entry[0] is not tool:
            entry = self._described[tool.name] = (tool, mcp_tool(tool))
        return entry[1]


def error_result(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def account_required_message(error: AccountRequired) -> str:
    accounts = (error.details or {}).get("availableAccounts", [])
    ids = ", ".join(account["connectedAccountId"] for account in accounts)
    return f"{error.message}. Pass connectedAccountId, one of: {ids}"


def invalid_input_message(error: InvalidRequest) -> str:
    if not error.details:
        return error.message
    return f"{error.message}: {json.dumps(error.details, sort_keys=True)}"


class McpToolCalls:
    def __init__(self, runtime: Runtime, streams: StreamRegistry, *, public_base_url: str) -> None:
        self.runtime = runtime
        self.streams = streams
        self.describe = McpToolDescriptions()
        self._events_url = f"{public_base_url}/api/runtime/executions/{{executionId}}/events"

    async def listing(self, principal: Principal, disabled: frozenset[str] | None) -> types.ListToolsResult:
        tools = await self.runtime.visible_tools(principal, disabled=disabled)
        return types.ListToolsResult(tools=[self.describe(tool) for tool in tools], ttl_ms=0)

    async def call(
        self,
        principal: Principal,
        name: str,
        arguments: dict[str, Any],
        *,
        disabled: frozenset[str] | None,
        observation: DecisionObserver | None,
        on_progress: Progress | None,
    ) -> types.CallToolResult:
        # A legacy session runs this in the session's task, outside the cancel scope of the POST that
        # carried the call: the call gets its own, so the kill switch and max_stream_seconds stop the tool too.
        bound = self.streams.open(principal.key_id, is_stream=False)
        try:
            with bound.scope:
                result = await self.runtime.invoke(
                    principal,
                    name,
                    arguments,
                    source="mcp",
                    on_progress=on_progress,
                    disabled=disabled,
                    observation=observation,
                    route="tools/call",
                )
            if bound.scope.cancelled_caught:
                return error_result((RevokedApiKey if bound.terminated else StreamTimeLimit).message)
        except NotFound:
            return error_result(f"Unknown tool: {name}")
        except InvalidRequest as error:
            return error_result(invalid_input_message(error))
        except AccountRequired as error:
            return error_result(account_required_message(error))
        except CapgateError as error:
            return error_result(error.message)
        finally:
            self.streams.close(bound)
        meta = {
            "executionId": result.execution_id,
            "sessionId": result.session_id,
            "eventsUrl": self._events_url.format(executionId=result.execution_id),
        }
        if result.status != "succeeded":
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=result.error or "Tool failed")], is_error=True, _meta=meta
            )
        structured = result.output if isinstance(result.output, dict) else {"result": result.output}
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(result.output, default=str))],
            structured_content=structured,
            _meta=meta,
        )
