"""Runtime.invoke and Runtime.visible_tools, the contract the REST routes and the MCP endpoint share."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from pydantic import BaseModel

from auth.errors import Conflict, InvalidRequest, NotFound
from auth.principal import Principal
from server.app import create_app
from server.runtime import store as runtime_store
from server.state import AppState
from tests.conftest import migrate
from tests.helpers import make_settings
from tools.context import ToolContext
from tools.registry import Tool, ToolRegistry
from tools.switches import ToolSwitches


class Empty(BaseModel):
    pass


async def chatty(ctx: ToolContext, _args: Empty) -> dict[str, Any]:
    await ctx.log("info", f"running in {ctx.session_id}")
    await ctx.progress(1, None, None)
    raise RuntimeError("boom")


async def writer(_ctx: ToolContext, _args: Empty) -> str:
    return "wrote"


async def not_json(_ctx: ToolContext, _args: Empty) -> object:
    return object()


TOOLS = [
    Tool("chatty", "logs, then fails", Empty, chatty, read_only=True),
    Tool("writer", "a write tool", Empty, writer),
    Tool("not_json", "returns something that is not JSON", Empty, not_json, read_only=True),
]


@pytest.fixture
async def state(tmp_path: Path, sqlite_url: str) -> AsyncIterator[AppState]:
    await migrate(sqlite_url)
    app = create_app(make_settings(tmp_path, sqlite_url), tools=ToolRegistry(TOOLS))
    async with LifespanManager(app):
        yield app.state.capgate


async def principal(state: AppState, scopes: tuple[str, ...] = ("runtime",), **kwargs: Any) -> Principal:
    from auth import store

    async with state.sessions.begin() as session:
        organization = await store.create_organization(session, name=f"org-{id(kwargs)}-{len(scopes)}-{scopes[0]}")
    return Principal(
        key_id="k" * 12,
        organization_id=organization.id,
        key_name="test",
        scopes=scopes,
        allowed_tools=kwargs.get("allowed_tools"),
        expires_at=None,
    )


async def test_a_raising_tool_fails_with_its_message_and_events(state: AppState) -> None:
    caller = await principal(state)
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    result = await state.runtime.invoke(caller, "chatty", {}, source="mcp", on_progress=on_progress)
    assert result.status == "failed" and result.error == "RuntimeError: boom" and result.output is None
    assert progress == [(1, None, None)]
    async with state.sessions() as session:
        events = await runtime_store.load_events(session, execution_id=result.execution_id, after=0)
        execution = await runtime_store.get_execution(
            session, organization_id=caller.organization_id, execution_id=result.execution_id
        )
        created = await runtime_store.get_session(
            session, organization_id=caller.organization_id, session_id=result.session_id
        )
    assert [event.type for event in events] == ["started", "log", "progress", "failed"]
    assert events[1].data == {"level": "info", "message": f"running in {result.session_id}"}
    assert execution.source == "mcp" and created.source == "mcp"


async def test_a_result_that_is_not_json_is_a_failure(state: AppState) -> None:
    result = await state.runtime.invoke(await principal(state), "not_json", {})
    assert result.status == "failed" and result.error == "Tool not_json returned a result that is not JSON"


async def test_hidden_and_unknown_tools_get_the_same_not_found(state: AppState) -> None:
    reader = await principal(state, ("runtime:read",))
    with pytest.raises(NotFound) as hidden:
        await state.runtime.invoke(reader, "writer", {})
    with pytest.raises(NotFound) as unknown:
        await state.runtime.invoke(reader, "nothing", {})
    assert hidden.value.body() == {"error": "Unknown tool: writer", "code": "not_found"}
    assert unknown.value.body() == {"error": "Unknown tool: nothing", "code": "not_found"}


async def test_bad_arguments_name_the_field(state: AppState) -> None:
    with pytest.raises(InvalidRequest) as error:
        await state.runtime.invoke(await principal(state), "writer", {"surprise": 1}.get("x", "not a dict"))  # type: ignore[arg-type]
    assert error.value.details == {"input": "must be an object"}


async def test_idempotency_key_reused_is_a_conflict(state: AppState) -> None:
    caller = await principal(state)
    first = await state.runtime.invoke(caller, "writer", {}, idempotency_key="k")
    again = await state.runtime.invoke(caller, "writer", {}, idempotency_key="k")
    assert again == first
    with pytest.raises(Conflict) as error:
        await state.runtime.invoke(caller, "chatty", {}, idempotency_key="k")
    assert error.value.code == "idempotency_key_reused"


async def test_visible_tools_apply_scope_globs_and_switches(state: AppState) -> None:
    everything = await principal(state)
    assert [tool.name for tool in await state.runtime.visible_tools(everything)] == ["chatty", "writer", "not_json"]
    reader = await principal(state, ("runtime:read",))
    assert [tool.name for tool in await state.runtime.visible_tools(reader)] == ["chatty", "not_json"]
    narrowed = await principal(state, ("runtime",), allowed_tools=("w*",))
    assert [tool.name for tool in await state.runtime.visible_tools(narrowed)] == ["writer"]
    switches: ToolSwitches = state.runtime.switches
    await switches.set_enabled(everything.organization_id, "writer", False)
    assert [tool.name for tool in await state.runtime.visible_tools(everything)] == ["chatty", "not_json"]


async def test_an_invalid_idempotency_key_leaves_no_live_execution_behind(state: AppState) -> None:
    caller = await principal(state)
    with pytest.raises(InvalidRequest):
        await state.runtime.invoke(caller, "chatty", {}, idempotency_key="bad\nkey")
    assert len(state.runtime.live) == 0  # nothing registered for event-stream followers to wait on
