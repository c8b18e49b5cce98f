"""The MCP endpoint in process, through the official client, with tools registered for the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel
from starlette.applications import Starlette

from server.app import create_app
from server.state import AppState
from tests.conftest import migrate
from tests.helpers import KeyFactory, make_settings
from tests.mcp_helpers import Mode, leaf_errors, mcp_client
from tools.registry import Tool, ToolRegistry

MODES: list[Mode] = ["legacy", "auto"]
MCP_URL = "http://capgate.test/mcp"


class PathInput(BaseModel):
    path: str


async def read_handler(_ctx: Any, args: PathInput) -> dict[str, str]:
    return {"read": args.path}


async def write_handler(_ctx: Any, args: PathInput) -> dict[str, str]:
    return {"wrote": args.path}


TEST_TOOLS = [
    Tool(name="memory_read", description="read", input_model=PathInput, handler=read_handler, read_only=True),
    Tool(name="memory_search", description="search", input_model=PathInput, handler=read_handler, read_only=True),
    Tool(name="memory_write", description="write", input_model=PathInput, handler=write_handler, destructive=True),
]


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Starlette]:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", allowed_hosts=["capgate.test"])
    await migrate(settings.resolved_database_url)
    application = create_app(settings, tools=ToolRegistry(TEST_TOOLS))
    async with LifespanManager(application):
        yield application


async def tool_names(app: Starlette, key: str, mode: Mode) -> list[str]:
    async with mcp_client(MCP_URL, key, mode=mode, app=app) as client:
        return sorted(tool.name for tool in (await client.list_tools()).tools)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("style", ["bearer", "x-api-key"])
async def test_list_and_call_with_either_header(app: Starlette, keys: KeyFactory, mode: Mode, style: str) -> None:
    key = await keys.key(await keys.organization())
    async with mcp_client(MCP_URL, key, mode=mode, style=style, app=app) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(listed) == {"memory_read", "memory_search", "memory_write"}
        assert listed["memory_read"].annotations.read_only_hint is True
        assert listed["memory_write"].annotations.destructive_hint is True
        assert listed["memory_write"].input_schema["required"] == ["path"]
        result = await client.call_tool("memory_write", {"path": "/x.md"})
        assert not result.is_error
        assert result.structured_content == {"wrote": "/x.md"}
        assert {"executionId", "sessionId", "eventsUrl"} <= set(result.meta or {})


@pytest.mark.parametrize("mode", MODES)
async def test_each_key_lists_exactly_its_tools(app: Starlette, keys: KeyFactory, mode: Mode) -> None:
    org = await keys.organization()
    full = await keys.key(org, scopes=["runtime"])
    read_only = await keys.key(org, scopes=["runtime:read"])
    narrowed = await keys.key(org, scopes=["runtime"], allowed_tools=["memory_read", "memory_search"])
    assert await tool_names(app, full, mode) == ["memory_read", "memory_search", "memory_write"]
    assert await tool_names(app, read_only, mode) == ["memory_read", "memory_search"]
    assert await tool_names(app, narrowed, mode) == ["memory_read", "memory_search"]
    for key in (read_only, narrowed):
        async with mcp_client(MCP_URL, key, mode=mode, app=app) as client:
            hidden = await client.call_tool("memory_write", {"path": "/x.md"})
            unknown = await client.call_tool("no_such_tool", {})
        assert hidden.is_error and unknown.is_error
        assert hidden.content[0].text == "Unknown tool: memory_write"
        assert unknown.content[0].text == "Unknown tool: no_such_tool"


@pytest.mark.parametrize("mode", MODES)
async def test_bad_input_is_a_tool_error_naming_the_field(app: Starlette, keys: KeyFactory, mode: Mode) -> None:
    key = await keys.key(await keys.organization())
    async with mcp_client(MCP_URL, key, mode=mode, app=app) as client:
        result = await client.call_tool("memory_read", {"wrong": 1})
    assert result.is_error
    assert "path" in result.content[0].text


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "Missing API key"),
        ("invalid", "Invalid API key"),
        ("revoked", "API key has been revoked"),
        ("no-runtime-scope", "Missing required scope: runtime"),
    ],
)
async def test_the_client_shows_why_it_was_refused(
    app: Starlette, keys: KeyFactory, mode: Mode, case: str, message: str
) -> None:
    org = await keys.organization()
    key: str | None = None
    if case == "invalid":
        key = "cg_live_not-a-real-key"
    elif case == "revoked":
        key = await keys.key(org)
        await keys.revoke(key)
    elif case == "no-runtime-scope":
        key = await keys.key(org, scopes=["keys:manage"])
    with pytest.raises(BaseException) as raised:
        async with mcp_client(MCP_URL, key, mode=mode, app=app) as client:
            await client.list_tools()
    assert [str(error) for error in leaf_errors(raised.value) if isinstance(error, MCPError)] == [message]


async def test_legacy_session_belongs_to_the_key_that_opened_it(
    app: Starlette, keys: KeyFactory, client: httpx.AsyncClient
) -> None:
    org = await keys.organization()
    owner, other = await keys.key(org), await keys.key(org)
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    opened = await client.post("/mcp", json=initialize, headers={**headers, "x-api-key": owner})
    assert opened.status_code == 200
    assert '"tools":{"listChanged":true}' in opened.text  # capgate does send tools/list_changed
    session_id = opened.headers["mcp-session-id"]
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    session_headers = {**headers, "mcp-session-id": session_id, "mcp-protocol-version": "2025-06-18"}
    stolen = await client.post("/mcp", json=ping, headers={**session_headers, "x-api-key": other})
    assert stolen.status_code == 404
    own = await client.post("/mcp", json=ping, headers={**session_headers, "x-api-key": owner})
    assert own.status_code == 200


async def test_no_oauth_metadata_is_served(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-authorization-server", "/register"):
        assert (await client.get(path, headers={"x-api-key": key})).status_code == 404


async def test_unexpected_host_header_is_refused(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    response = await client.post(
        "/mcp", json={}, headers={"x-api-key": key, "host": "evil.example", "content-type": "application/json"}
    )
    assert response.status_code == 421


async def test_scope_change_reaches_the_next_tools_list(app: Starlette, keys: KeyFactory, state: AppState) -> None:
    from sqlalchemy import update

    from auth.dbtypes import utcnow
    from auth.models import ApiKey

    key = await keys.key(await keys.organization())
    async with mcp_client(MCP_URL, key, mode="legacy", app=app) as client:
        assert len((await client.list_tools()).tools) == 3
        async with state.sessions.begin() as session:
            narrowed = {"allowed_tools": ["memory_read"], "updated_at": utcnow()}
            await session.execute(update(ApiKey).where(ApiKey.id == key[8:20]).values(**narrowed))
        await state.watcher.poll_once()
        assert [tool.name for tool in (await client.list_tools()).tools] == ["memory_read"]


async def test_a_tool_disabled_elsewhere_disappears_on_the_next_request(tmp_path: Path) -> None:
    """Another process (the CLI) disables a tool: the change feed, not the cache TTL, makes it vanish."""
    from tools.switches import store_tool_enabled

    settings = make_settings(
        tmp_path / "long-ttl", f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", allowed_hosts=["capgate.test"]
    )
    settings = settings.model_copy(update={"tool_settings_cache_seconds": 3600.0})
    await migrate(settings.resolved_database_url)
    application = create_app(settings, tools=ToolRegistry(TEST_TOOLS))
    async with LifespanManager(application):
        own: AppState = application.state.capgate
        factory = KeyFactory(own.sessions, own.hasher, own.verifier)
        org = await factory.organization()
        key = await factory.key(org)
        assert "memory_write" in await tool_names(application, key, "auto")
        async with own.sessions.begin() as session:
            await store_tool_enabled(session, organization_id=org.id, tool_name="memory_write", enabled=False)
        await own.tool_watcher.poll_once()
        assert await tool_names(application, key, "auto") == ["memory_read", "memory_search"]
