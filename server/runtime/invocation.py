"""The one place a tool call happens. The REST routes and the MCP endpoint both call ``Runtime.invoke``.

Which tools a principal sees (``Runtime.visible_tools``, decided by ``ToolRegistry.visible``): the
registry's tools its scopes grant (``runtime:read`` → read-only tools only), narrowed by the key's
``allowed_tools`` globs, minus the tools its organization disabled. The disabled set comes from
``ToolSwitches``, an in-process cache (TTL ``tool_settings_cache_seconds``, dropped at once
on changes made through this process), so listing tools costs no database query on a warm
cache. A call's decision is the registry's (``ToolRegistry.decide``, which ``keys explain`` reports
too) and is recorded with the rule that made it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio
from anyio.abc import TaskGroup
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth.errors import NotFound
from auth.principal import Principal
from auth.server_timing import timing_record
from server.runtime import store as runtime_store
from server.runtime.calls import (
    InvocationResult,
    result_of,
    tool_span_attributes,
    validate_idempotency_key,
    validate_input,
)
from server.runtime.clock import DatabaseClock
from server.runtime.group_commit import GroupCommitter
from server.runtime.recorder import ExecutionRecorder, IdempotencyClaim, ProgressCallback, request_hash
from server.runtime.records import RuntimeRecords
from server.runtime.slots import ExecutionSlots, Slot
from server.runtime.telemetry import DecisionObserver, NoTelemetry, RuntimeTelemetry
from server.runtime.tool_call import call_tool
from tools.accounts import ACCOUNT_FIELD, choose_account
from tools.context import ToolContext
from tools.database import OrganizationDatabase
from tools.registry import EMPTY, OrganizationTools, Tool, ToolRegistry
from tools.switches import ToolSwitches

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Timing:
    event_flush_seconds: float
    execution_poll_seconds: float
    idempotency_ttl_seconds: float
    record_tool_io: bool = False
    """Tool arguments and results on trace spans (CAPGATE_OTEL_RECORD_TOOL_IO); off by default."""
    record_max_bytes: int = 16_384
    """Stored inputs and results are cut to this size, with a marker (CAPGATE_RECORD_MAX_BYTES)."""


class Runtime(RuntimeRecords):
    """The one tool-call path: which tools a principal sees, and running one of them as a recorded execution.

    Holds everything a call needs (tools, the sessionmaker, the tool switches, this process's live
    executions, group committer and database clock), so REST, MCP and tests call it alike; its sessions
    and executions are read through ``RuntimeRecords``.
    """

    def __init__(
        self,
        *,
        tools: ToolRegistry,
        db: async_sessionmaker[AsyncSession],
        switches: ToolSwitches,
        worker_id: str,
        timing: Timing,
        organization_tools: OrganizationTools | None = None,
        telemetry: RuntimeTelemetry | None = None,
        clock: DatabaseClock | None = None,
        slots: ExecutionSlots | None = None,
    ) -> None:
        super().__init__(db=db, poll_seconds=timing.execution_poll_seconds, clock=clock)
        self.tools = tools
        self.switches = switches
        self.worker_id = worker_id
        self.timing = timing
        self.organization_tools = organization_tools
        self.telemetry: RuntimeTelemetry = telemetry or NoTelemetry()
        self.committer = GroupCommitter()
        self.slots = slots or ExecutionSlots(per_key=64, per_organization=256)
        self.background: TaskGroup | None = None
        """Set while the app runs: where background executions run (cancelled, so interrupted, at shutdown)."""

    async def disabled_tools(self, principal: Principal) -> frozenset[str]:
        """The organization's disabled tools; fetch once per request and hand it to the calls below."""
        return await self.switches.disabled(principal.organization_id)

    async def visible_tools(self, principal: Principal, *, disabled: frozenset[str] | None = None) -> list[Tool]:
        if disabled is None:
            disabled = await self.disabled_tools(principal)
        return self.tools.visible(principal, disabled, await self._extra_tools(principal))

    async def find_tool(
        self,
        principal: Principal,
        name: str,
        *,
        disabled: frozenset[str] | None = None,
        observation: DecisionObserver | None = None,
        route: str = "",
    ) -> Tool:
        """The tool, or NotFound — the same answer for a tool that does not exist and one the key may not see.

        The decision (``ToolRegistry.decide``) is recorded with the rule that made it when ``observation`` is given.
        """
        if disabled is None:
            disabled = await self.disabled_tools(principal)
        upstream = EMPTY if name in self.tools else await self._extra_tools(principal)
        verdict = self.tools.decide(principal, name, disabled, upstream)
        if observation is not None:
            observation.decide(
                allowed=verdict.allowed, reason=verdict.reason, rule=verdict.rule, route=route, tool=name,
                principal=principal,
            )  # fmt: skip
        tool = self.tools.get(name) or upstream.get(name)
        if not verdict.allowed or tool is None:
            raise NotFound(f"Unknown tool: {name}")
        return tool

    async def _extra_tools(self, principal: Principal) -> Mapping[str, Tool]:
        if self.organization_tools is None:
            return EMPTY
        return await self.organization_tools(principal.organization_id)

    async def wait_for_result(self, principal: Principal, execution_id: str) -> InvocationResult:
        """The result of an execution, waiting while it runs here or in another process."""
        while True:
            live = self.live.get(execution_id)
            if live is not None:
                await live.finished.wait()
            execution = await self.get_execution(principal, execution_id)
            if execution.status != "running":
                return result_of(execution)
            await anyio.sleep(self.timing.execution_poll_seconds)

    async def invoke(
        self,
        principal: Principal,
        tool_name: str,
        arguments: dict[str, Any],
        *,
        session_id: str | None = None,
        connected_account_id: str | None = None,
        idempotency_key: str | None = None,
        source: str = "api",
        on_progress: ProgressCallback | None = None,
        disabled: frozenset[str] | None = None,
        observation: DecisionObserver | None = None,
        route: str = "",
        background: bool = False,
    ) -> InvocationResult:
        """Runs the tool and returns its result; with ``background`` it returns as soon as the execution is
        recorded (status ``running``) and the tool runs on in this process, whatever happens to the caller."""
        tool = await self.find_tool(principal, tool_name, disabled=disabled, observation=observation, route=route)
        if tool.accounts:
            if connected_account_id is None and isinstance(arguments.get(ACCOUNT_FIELD), str):
                connected_account_id = arguments[ACCOUNT_FIELD]  # over MCP the account is an argument
            arguments = {name: value for name, value in arguments.items() if name != ACCOUNT_FIELD}
            connected_account_id = choose_account(tool, connected_account_id)
        args = validate_input(tool, arguments)
        organization_id = principal.organization_id
        if session_id is not None and idempotency_key is None:
            runtime_store.ensure_active(await self.get_session(principal, session_id))
        if idempotency_key is not None:
            idempotency_key = validate_idempotency_key(idempotency_key)  # before the recorder registers a live one
        slot = self.slots.acquire(principal.key_id, organization_id)
        try:
            return await self._record_and_run(
                principal, tool, args, arguments, session_id, connected_account_id, idempotency_key, source,
                on_progress, slot if background else None,
            )  # fmt: skip
        finally:
            if not slot.handed_off:
                slot.release()

    async def _record_and_run(
        self,
        principal: Principal,
        tool: Tool,
        args: Any,
        arguments: dict[str, Any],
        session_id: str | None,
        connected_account_id: str | None,
        idempotency_key: str | None,
        source: str,
        on_progress: ProgressCallback | None,
        background: Slot | None,
    ) -> InvocationResult:
        organization_id = principal.organization_id
        recorder = ExecutionRecorder(
            sessions=self.db,
            live=self.live,
            organization_id=organization_id,
            key_id=principal.key_id,
            execution_id=runtime_store.new_id("exe"),
            session_id=session_id,
            tool_name=tool.name,
            arguments=arguments,
            connected_account_id=connected_account_id,
            source=source,
            worker_id=self.worker_id,
            on_progress=on_progress,
            committer=self.committer,
            now=self.clock.now,
            record_max_bytes=self.timing.record_max_bytes,
        )
        if idempotency_key is not None:
            claim = IdempotencyClaim(
                key=idempotency_key,
                request_hash=request_hash(tool.name, args.model_dump(mode="json"), session_id, connected_account_id),
                ttl=timedelta(seconds=self.timing.idempotency_ttl_seconds),
            )
            try:
                with timing_record():
                    earlier = await recorder.start(claim)
            except BaseException:
                recorder.close()
                raise
            if earlier is not None:
                recorder.close()
                if background is not None:
                    return InvocationResult(earlier, recorder.session_id, "running", None, None)
                return await self.wait_for_result(principal, earlier)
        ctx = ToolContext(
            organization_id=organization_id,
            key_id=principal.key_id,
            session_id=recorder.session_id,
            execution_id=recorder.execution_id,
            db=OrganizationDatabase(organization_id, self.db),
            _emit=recorder.emit,
            connected_account_id=connected_account_id,
        )
        if background is None:
            return await self._run(tool, ctx, args, recorder, arguments)
        try:
            if idempotency_key is None:
                with timing_record():
                    await recorder.start()  # recorded now: the caller may look the execution up at once
        except BaseException:
            recorder.close()
            raise
        if self.background is None:
            recorder.close()
            raise RuntimeError("background executions need the running app (lifespan)")
        background.handed_off = True
        self.background.start_soon(self._run_in_background, tool, ctx, args, recorder, arguments, background)
        return InvocationResult(recorder.execution_id, recorder.session_id, "running", None, None)

    async def _run_in_background(
        self,
        tool: Tool,
        ctx: ToolContext,
        args: Any,
        recorder: ExecutionRecorder,
        arguments: dict[str, Any],
        slot: Slot,
    ) -> None:
        try:
            await self._run(tool, ctx, args, recorder, arguments)
        except Exception:  # _run turns tool failures into failed executions; this is a recording failure
            logger.exception("background execution %s could not be recorded", recorder.execution_id)
        finally:
            slot.release()

    async def _run(
        self, tool: Tool, ctx: ToolContext, args: Any, recorder: ExecutionRecorder, arguments: dict[str, Any]
    ) -> InvocationResult:
        spans, record_io = self.telemetry.spans, self.timing.record_tool_io
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(recorder.flush_every, self.timing.event_flush_seconds)
                with spans.child(
                    f"capgate.tool {tool.name}",
                    tool_span_attributes(recorder.execution_id, recorder.session_id, arguments, record_io),
                ) as span:
                    status, output, error = await call_tool(tool, ctx, args)
                    if span is not None and record_io:
                        span.set_attribute("capgate.tool.result", json.dumps(output, default=str)[:4096])
                tasks.cancel_scope.cancel()
        except BaseException:  # cancelled (client gone, key's streams terminated, shutdown)
            with anyio.CancelScope(shield=True), spans.child("capgate.record_write"), timing_record():
                await recorder.finish("interrupted", None, runtime_store.INTERRUPTED_BY_CANCEL)
            self.telemetry.tool_executed(tool.name, "interrupted")
            raise
        with spans.child("capgate.record_write"), timing_record():
            await recorder.finish(status, output, error)
        self.telemetry.tool_executed(tool.name, status)
        return InvocationResult(recorder.execution_id, recorder.session_id, status, output, error)
