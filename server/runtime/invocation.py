"""The one place a tool call happens. The REST routes and the MCP endpoint both call ``invoke_tool``.

Which tools a principal sees (``visible_tools``): the registry's tools its scopes grant
(``runtime:read`` → read-only tools only), narrowed by the key's ``allowed_tools`` globs,
minus the tools its organization disabled. The disabled set comes from
``ToolSwitches``, an in-process cache (TTL ``tool_settings_cache_seconds``, dropped at once
on changes made through this process), so listing tools costs no database query on a warm
cache.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import anyio
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from auth.errors import InvalidRequest, NotFound
from auth.principal import Principal
from server.runtime import store as runtime_store
from server.runtime.models import Execution
from server.runtime.recorder import ExecutionRecorder, IdempotencyClaim, ProgressCallback, request_hash
from server.state import AppState
from tools.context import ToolContext, ToolError
from tools.database import OrganizationDatabase
from tools.registry import Tool

logger = logging.getLogger(__name__)
MAX_IDEMPOTENCY_KEY_LENGTH = 255


@dataclass(frozen=True)
class InvocationResult:
    execution_id: str
    session_id: str
    status: Literal["succeeded", "failed"]
    output: Any
    error: str | None

    @property
    def is_error(self) -> bool:
        return self.status == "failed"


async def visible_tools(state: AppState, principal: Principal) -> list[Tool]:
    disabled = await state.runtime.switches.disabled(principal.organization_id)
    return [tool for tool in state.tools.visible_to(principal) if tool.name not in disabled]


async def find_tool(state: AppState, principal: Principal, tool_name: str) -> Tool:
    """The tool, or NotFound — the same answer for a tool that does not exist and one the key may not see."""
    tool = state.tools.get(tool_name)
    if tool is None or not state.tools.grants(principal, tool):
        raise NotFound(f"Unknown tool: {tool_name}")
    if tool_name in await state.runtime.switches.disabled(principal.organization_id):
        raise NotFound(f"Unknown tool: {tool_name}")
    return tool


def _field_name(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "input"


def validate_input(tool: Tool, arguments: Any) -> Any:
    if not isinstance(arguments, dict):
        raise InvalidRequest("Tool input must be a JSON object", details={"input": "must be an object"})
    try:
        return tool.input_model.model_validate(arguments)
    except ValidationError as exc:
        fields: dict[str, str] = {}
        for error in exc.errors(include_url=False):
            fields.setdefault(_field_name(error["loc"]), error["msg"])
        raise InvalidRequest(f"Invalid input for tool {tool.name}", details=fields) from None


def validate_idempotency_key(key: str) -> str:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise InvalidRequest(
            "Invalid Idempotency-Key", details={"Idempotency-Key": "1 to 255 printable ASCII characters"}
        )
    return key


def result_of(execution: Execution) -> InvocationResult:
    if execution.status == "succeeded":
        return InvocationResult(execution.id, execution.session_id, "succeeded", execution.output, None)
    return InvocationResult(execution.id, execution.session_id, "failed", None, execution.error or "Execution failed")


async def wait_for_result(state: AppState, principal: Principal, execution_id: str) -> InvocationResult:
    """The result of an execution, waiting while it runs here or in another process."""
    while True:
        live = state.runtime.live.get(execution_id)
        if live is not None:
            await live.finished.wait()
        async with state.sessions() as session:
            execution = await runtime_store.get_execution(
                session, organization_id=principal.organization_id, execution_id=execution_id
            )
        if execution.status != "running":
            return result_of(execution)
        await anyio.sleep(state.settings.execution_poll_seconds)


async def _call(tool: Tool, ctx: ToolContext, args: Any) -> tuple[Literal["succeeded", "failed"], Any, str | None]:
    try:
        result = await tool.handler(ctx, args)
    except ToolError as exc:
        return "failed", None, exc.message
    except Exception as exc:  # the tool boundary: any failure becomes a failed execution, never a 500
        logger.exception("tool %s raised", tool.name)
        return "failed", None, f"{type(exc).__name__}: {exc}"[:2000]
    try:
        return "succeeded", to_jsonable_python(result), None
    except PydanticSerializationError:
        return "failed", None, f"Tool {tool.name} returned a result that is not JSON"


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
    on_progress: ProgressCallback | None = None,
) -> InvocationResult:
    tool = await find_tool(state, principal, tool_name)
    args = validate_input(tool, arguments)
    organization_id = principal.organization_id
    if session_id is not None and idempotency_key is None:
        async with state.sessions() as session:
            row = await runtime_store.get_session(session, organization_id=organization_id, session_id=session_id)
        runtime_store.ensure_active(row)
    if idempotency_key is not None:
        idempotency_key = validate_idempotency_key(idempotency_key)  # before the recorder registers a live execution
    recorder = ExecutionRecorder(
        sessions=state.sessions,
        live=state.runtime.live,
        organization_id=organization_id,
        key_id=principal.key_id,
        execution_id=runtime_store.new_id("exe"),
        session_id=session_id,
        tool_name=tool.name,
        arguments=arguments,
        connected_account_id=connected_account_id,
        source=source,
        worker_id=state.runtime.worker_id,
        on_progress=on_progress,
        committer=state.runtime.committer,
    )
    if idempotency_key is not None:
        claim = IdempotencyClaim(
            key=idempotency_key,
            request_hash=request_hash(tool.name, arguments, session_id, connected_account_id),
            ttl=timedelta(seconds=state.settings.idempotency_ttl_seconds),
        )
        try:
            earlier = await recorder.start(claim)
        except BaseException:
            recorder.close()
            raise
        if earlier is not None:
            recorder.close()
            return await wait_for_result(state, principal, earlier)
    ctx = ToolContext(
        organization_id=organization_id,
        key_id=principal.key_id,
        session_id=recorder.session_id,
        execution_id=recorder.execution_id,
        db=OrganizationDatabase(organization_id, state.sessions),
        _emit=recorder.emit,
    )
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(recorder.flush_every, state.settings.event_flush_seconds)
            status, output, error = await _call(tool, ctx, args)
            tasks.cancel_scope.cancel()
    except BaseException:  # cancelled (client gone, key's streams terminated, shutdown)
        with anyio.CancelScope(shield=True):
            await recorder.finish("interrupted", None, "Execution was cancelled")
        raise
    await recorder.finish(status, output, error)
    return InvocationResult(recorder.execution_id, recorder.session_id, status, output, error)
