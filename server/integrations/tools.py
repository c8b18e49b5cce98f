"""An upstream tool as a capgate tool (kind ``integration``), and the choice of account for a call."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types

from server.integrations.pool import UpstreamUnavailable
from tools.accounts import ACCOUNT_FIELD
from tools.context import ToolContext, ToolError
from tools.registry import PassThroughInput, Tool, ToolAccount

MAX_ERROR_CHARS = 2000
UpstreamCall = Callable[..., Awaitable[types.CallToolResult]]


def text_of(result: types.CallToolResult) -> str:
    parts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    return "\n".join(parts)


def output_of(result: types.CallToolResult) -> Any:
    """An upstream result as the execution's output: its structured content, else its text, else its blocks."""
    if result.structured_content is not None:
        return result.structured_content
    if all(isinstance(block, types.TextContent) for block in result.content):
        return text_of(result)
    return [block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in result.content]


def integration_tool(
    *,
    name: str,
    integration_id: str,
    transport: str,
    listed: dict[str, Any],
    account_ids: list[str],
    call: UpstreamCall,
) -> Tool:
    upstream_name = str(listed.get("name", ""))
    raw_annotations = listed.get("annotations")
    annotations: dict[str, Any] = raw_annotations if isinstance(raw_annotations, dict) else {}
    backend = "mcp-stdio" if transport == "stdio" else "mcp-http"

    async def handler(ctx: ToolContext, args: PassThroughInput) -> Any:
        if ctx.connected_account_id is None:
            raise ToolError(f"{name} needs a connected account")
        arguments = {k: v for k, v in (args.model_extra or {}).items() if k != ACCOUNT_FIELD}
        try:
            result = await call(
                ctx.organization_id,
                ctx.connected_account_id,
                upstream_name,
                arguments,
                progress=ctx.progress,
                log=ctx.log,
            )
        except UpstreamUnavailable as error:
            raise ToolError(error.message) from None
        if result.is_error:
            raise ToolError((text_of(result) or f"{name} failed upstream")[:MAX_ERROR_CHARS])
        return output_of(result)

    schema = listed.get("inputSchema")
    return Tool(
        name=name,
        description=str(listed.get("description") or listed.get("title") or upstream_name),
        input_model=PassThroughInput,
        handler=handler,
        kind="integration",
        read_only=annotations.get("readOnlyHint") is True,
        idempotent=annotations.get("idempotentHint") is True,
        destructive=annotations.get("destructiveHint") is True,
        accounts=tuple(ToolAccount(account_id, integration_id, backend) for account_id in account_ids),
        schema_json=json.dumps(schema if isinstance(schema, dict) else {"type": "object"}, sort_keys=True),
    )


def mcp_input_schema(tool: Tool) -> dict[str, Any]:
    """Over MCP a tool on several accounts takes an optional ``connectedAccountId`` naming one of them."""
    if len(tool.accounts) < 2:
        return tool.parameters
    schema = dict(tool.parameters)
    properties = dict(schema.get("properties") or {})
    properties[ACCOUNT_FIELD] = {
        "type": "string",
        "enum": [account.connected_account_id for account in tool.accounts],
        "description": "Which connected account runs this tool; required because it is available on several.",
    }
    schema["properties"] = properties
    return schema
