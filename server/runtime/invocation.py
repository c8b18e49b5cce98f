"""The one place a tool call happens. The REST routes and the MCP endpoint both call ``invoke_tool``.

Which tools a principal sees (``visible_tools``): the registry's tools its scopes grant
(``runtime:read`` → read-only tools only), narrowed by the key's ``allowed_tools`` globs,
minus the tools its organization disabled. The disabled set comes from
``ToolSwitches``, an in-process cache (TTL ``tool_settings_cache_seconds``, dropped at once
on changes made through this process), so listing tools costs no database query on a warm
cache.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import anyio
from pydantic import ValidationError

from auth.errors import Conflict, InvalidRequest, NotFound
from auth.principal import Principal
from server.integrations.tools import ACCOUNT_FIELD, choose_account
from server.observability.observed import ObservedRequest
from server.runtime import store as runtime_store
from server.runtime.models import Execution
from server.runtime.recorder import ExecutionRecorder, IdempotencyClaim, ProgressCallback, request_hash
from server.runtime.tool_call import call_tool
from server.state import AppState
from tools.context import ToolContext
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
    tools = state.tools.visible_to(principal)
    upstream = await state.integrations.tools(principal.organization_id)
    if upstream:
        granted = (
            tool for tool in upstream.values() if tool.name not in state.tools and state.tools.grants(principal, tool)
        )
        tools = [*tools, *granted]
    return [tool for tool in tools if tool.name not in disabled]


async def find_tool(
    state: AppState, principal: Principal, tool_name: str, observation: ObservedRequest | None = None, route: str = ""
) -> Tool:
    """The tool, or NotFound — the same answer for a tool that does not exist and one the key may not see.

    The decision is the registry's (``ToolRegistry.decide``, which ``keys explain`` reports too) and is
    recorded with the rule that made it.
    """
    disabled = await state.runtime.switches.disabled(principal.organization_id)
    upstream = {} if tool_name in state.tools else await state.integrations.tools(principal.organization_id)
    verdict = state.tools.decide(principal, tool_name, disabled, upstream)
    if observation is not None:
        observation.decide(
            allowed=verdict.allowed,
            reason=verdict.reason,
            rule=verdict.rule,
            route=route,
            tool=tool_name,
            principal=principal,
        )
    tool = state.tools.get(tool_name) or upstream.get(tool_name)
    if not verdict.allowed or tool is None:
        raise NotFound(f"Unknown tool: {tool_name}")
    return tool


def _field_name(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "input"


def validate_input(tool: Tool, arguments: Any) -> Any:
    """Strict JSON validation: `true` or `"7"` is no integer (the schema the client saw says so)."""
    if not isinstance(arguments, dict):
        raise InvalidRequest("Tool input must be a JSON object", details={"input": "must be an object"})
    try:
        return tool.input_model.model_validate_json(json.dumps(arguments), strict=True)
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
    """What a retry with the same Idempotency-Key answers: the first call's result.

    An interrupted first call has no result, and may have applied in part (a write may have
    committed before the cut): the retry says exactly that rather than run the tool again.
    """
    if execution.status == "interrupted":
        raise Conflict(
            "The first call with this Idempotency-Key was interrupted and may have applied in part;"
            " check its execution, then retry with a new Idempotency-Key",
            code="idempotency_key_interrupted",
            details={"executionId": execution.id},
        )
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
    observation: ObservedRequest | None = None,
    route: str = "",
) -> InvocationResult:
    tool = await find_tool(state, principal, tool_name, observation, route)
    if tool.accounts:
        if connected_account_id is None and isinstance(arguments.get(ACCOUNT_FIELD), str):
            connected_account_id = arguments[ACCOUNT_FIELD]  # over MCP the account is an argument
        arguments = {name: value for name, value in arguments.items() if name != ACCOUNT_FIELD}
        connected_account_id = choose_account(tool, connected_account_id)
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
        now=state.runtime.clock.now,
    )
    if idempotency_key is not None:
        claim = IdempotencyClaim(
            key=idempotency_key,
            request_hash=request_hash(tool.name, args.model_dump(mode="json"), session_id, connected_account_id),
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
        connected_account_id=connected_account_id,
    )
    spans = state.metrics.spans
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(recorder.flush_every, state.settings.event_flush_seconds)
            with spans.child(f"capgate.tool {tool.name}", tool_span_attributes(state, recorder, arguments)) as span:
                status, output, error = await call_tool(tool, ctx, args)
                if span is not None and state.settings.otel_record_tool_io:
                    span.set_attribute("capgate.tool.result", json.dumps(output, default=str)[:4096])
            tasks.cancel_scope.cancel()
    except BaseException:  # cancelled (client gone, key's streams terminated, shutdown)
        with anyio.CancelScope(shield=True), spans.child("capgate.record_write"):
            await recorder.finish("interrupted", None, "Execution was cancelled")
        state.metrics.tool_executed(tool.name, "interrupted")
        raise
    with spans.child("capgate.record_write"):
        await recorder.finish(status, output, error)
    state.metrics.tool_executed(tool.name, status)
    return InvocationResult(recorder.execution_id, recorder.session_id, status, output, error)


def tool_span_attributes(state: AppState, recorder: ExecutionRecorder, arguments: dict[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "capgate.execution_id": recorder.execution_id,
        "capgate.session_id": recorder.session_id,
    }
    if state.settings.otel_record_tool_io:
        attributes["capgate.tool.arguments"] = json.dumps(arguments, default=str)[:4096]
    return attributes
