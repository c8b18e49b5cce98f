"""The bare-SDK baseline: `mcp` 2.x low-level ``Server`` with one tool doing capgate's ``example_echo`` work.

Served with the SDK's own ``streamable_http_app()`` defaults (both protocol generations,
SSE answers on legacy sessions, DNS-rebinding protection for 127.0.0.1) under one uvicorn
worker, exactly as a user of the SDK would run it:

    python -m bench.mcp_bare --port 8001
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from pydantic import BaseModel, Field

ECHO = types.Tool(
    name="example_echo",
    description="Send the text back.",
    input_schema={
        "type": "object",
        "properties": {"text": {"type": "string", "maxLength": 10_000}},
        "required": ["text"],
    },
    annotations=types.ToolAnnotations(read_only_hint=True, idempotent_hint=True, destructive_hint=False),
)


class EchoInput(BaseModel):
    text: str = Field(max_length=10_000)


def build_server() -> Server[Any]:
    async def list_tools(
        _ctx: ServerRequestContext[Any, Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[ECHO])

    async def call_tool(
        _ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        if params.name != ECHO.name:
            return types.CallToolResult(content=[types.TextContent(type="text", text="Unknown tool")], is_error=True)
        # The same work as capgate's tool: validate the input with a pydantic model, answer text + structured.
        output = {"text": EchoInput.model_validate(dict(params.arguments or {})).text}
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(output))], structured_content=output
        )

    return Server("bare", version="0.1.0", on_list_tools=list_tools, on_call_tool=call_tool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = build_server().streamable_http_app()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
