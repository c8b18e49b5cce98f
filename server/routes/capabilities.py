"""GET /api/runtime/capabilities (and /capabilities): the tools this key may use."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from server.invocation import visible_tools
from server.state import app_state
from tools.registry import Tool


def tool_capability(tool: Tool) -> dict[str, Any]:
    return {
        "name": tool.name,
        "kind": tool.kind,
        "description": tool.description,
        "parameters": tool.parameters,
        "isReadOnly": tool.read_only,
        "supportsIdempotency": tool.idempotent,
        "accounts": list(tool.accounts),
    }


def capabilities_document(tools: list[Tool], base_url: str) -> dict[str, Any]:
    runtime = f"{base_url}/api/runtime"
    return {
        "capabilities": [tool_capability(tool) for tool in tools],
        "sessionCreateUrl": f"{runtime}/sessions",
        "toolInvokeUrlTemplate": f"{runtime}/tools/{{toolName}}",
        "sessionToolInvokeUrlTemplate": f"{runtime}/sessions/{{sessionId}}/tools/{{toolName}}",
        "executionEventsUrlTemplate": f"{runtime}/executions/{{executionId}}/events",
    }


async def capabilities(request: Request) -> JSONResponse:

    state = app_state(request)
    return JSONResponse(capabilities_document(await visible_tools(state, request.user), state.public_base_url))
