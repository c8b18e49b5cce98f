"""TEMPORARY (replaced by the Runtime API's invocation module at merge)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from auth.errors import InvalidRequest, NotFound
from auth.principal import Principal
from server.state import AppState
from tools.registry import Tool


@dataclass(frozen=True)
class InvocationResult:
    execution_id: str
    session_id: str
    status: Literal["succeeded", "failed"]
    output: Any
    error: str | None


async def visible_tools(state: AppState, principal: Principal) -> list[Tool]:
    return state.tools.visible_to(principal)


async def invoke_tool(
    state: AppState,
    principal: Principal,
    tool_name: str,
    arguments: dict[str, Any],
    *,
    session_id: str | None = None,
    connected_account_id: str | None = None,
    idempotency_key: str | None = None,
    source: str = "api",
    on_progress: Callable[[float, float | None, str | None], Awaitable[None]] | None = None,
) -> InvocationResult:
    tool = next((t for t in await visible_tools(state, principal) if t.name == tool_name), None)
    if tool is None:
        raise NotFound(f"Unknown tool: {tool_name}")
    try:
        args = tool.input_model.model_validate(arguments)
    except ValidationError as exc:
        raise InvalidRequest(details={"fields": [".".join(map(str, e["loc"])) for e in exc.errors()]}) from None
    output = await tool.handler(on_progress, args)
    return InvocationResult("exe_tmp", "ses_tmp", "succeeded", output, None)
