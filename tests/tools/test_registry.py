import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from typer.testing import CliRunner

from auth.principal import Principal
from server.app import create_app
from server.cli import main as cli
from server.settings import Settings
from server.state import AppState
from tests.conftest import migrate
from tests.helpers import KeyFactory, make_settings
from tests.runtime_helpers import headers, invoke
from tools import plugins
from tools.plugins import ENTRY_POINT_GROUP, plugin_tools
from tools.registry import PassThroughInput, Tool, ToolRegistry

MEMORY_TOOLS = {"memory_ls", "memory_read", "memory_write", "memory_append", "memory_search"}
READ_ONLY_MEMORY_TOOLS = {"memory_ls", "memory_read", "memory_search"}


async def tool_names(client: httpx.AsyncClient, key: str) -> set[str]:
    response = await client.get("/api/runtime/capabilities", headers=headers(key))
    assert response.status_code == 200
    return {tool["name"] for tool in response.json()["capabilities"]}


def test_the_example_package_registers_through_the_entry_point() -> None:
    assert "example" in {entry.name for entry in entry_points(group=ENTRY_POINT_GROUP)}
    assert {"example_countdown", "example_echo", "example_fail"} <= {tool.name for tool in plugin_tools()}


async def test_capabilities_list_builtin_and_plugin_tools(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    response = await client.get("/api/runtime/capabilities", headers=headers(key))
    tools = {tool["name"]: tool for tool in response.json()["capabilities"]}
    assert MEMORY_TOOLS | {"example_countdown"} <= set(tools)
    assert tools["memory_read"]["kind"] == "memory" and tools["memory_read"]["isReadOnly"] is True
    assert tools["memory_write"]["isReadOnly"] is False
    assert tools["memory_write"]["parameters"]["required"] == ["path", "content"]
    assert tools["example_countdown"]["kind"] == "integration"


async def test_read_only_key_sees_and_calls_no_write_tool(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    org = await keys.organization()
    writer = await keys.key(org)
    reader = await keys.key(org, scopes=["runtime:read"])
    visible = await tool_names(client, reader)
    assert visible & MEMORY_TOOLS == READ_ONLY_MEMORY_TOOLS
    response = await invoke(client, reader, "memory_write", {"path": "/a.md", "content": "x"})
    assert response.status_code == 404
    assert response.json() == {"error": "Unknown tool: memory_write", "code": "not_found"}
    await invoke(client, writer, "memory_write", {"path": "/a.md", "content": "from writer"})
    read = await invoke(client, reader, "memory_read", {"path": "/a.md"})
    assert read.json()["result"]["content"] == "from writer"


async def test_allowed_tools_globs_narrow_the_list(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization(), allowed_tools=["memory_r*", "memory_ls"])
    assert await tool_names(client, key) == {"memory_read", "memory_ls"}
    hidden = await invoke(client, key, "memory_search", {"query": "x"})
    unknown = await invoke(client, key, "memory_nothing", {"query": "x"})
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["error"] == "Unknown tool: memory_search"


async def test_disabled_tools_are_absent_and_404(client: httpx.AsyncClient, keys: KeyFactory, state: AppState) -> None:
    org = await keys.organization()
    other = await keys.key(await keys.organization())
    key = await keys.key(org)
    await state.runtime.switches.set_enabled(org.id, "memory_append", False)
    assert "memory_append" not in await tool_names(client, key)
    assert (await invoke(client, key, "memory_append", {"path": "/a.md", "content": "x"})).status_code == 404
    assert "memory_append" in await tool_names(client, other)
    await state.runtime.switches.set_enabled(org.id, "memory_append", True)
    assert "memory_append" in await tool_names(client, key)


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


async def capgate(settings: Settings, *args: str) -> CliResult:
    """Runs the real CLI against the test database, in a thread so this event loop (and the app) keeps running."""
    env = {"CAPGATE_DATABASE_URL": settings.resolved_database_url, "CAPGATE_DATA_DIR": str(settings.data_dir)}

    def run() -> CliResult:
        outcome = CliRunner().invoke(cli.app, list(args), env=env)
        return CliResult(outcome.exit_code, outcome.stdout, outcome.stderr)

    return await anyio.to_thread.run_sync(run)


async def test_cli_disables_and_enables_a_tool(client: httpx.AsyncClient, keys: KeyFactory, settings: Settings) -> None:
    org = await keys.organization()
    key = await keys.key(org)
    assert "example_echo" in await tool_names(client, key)
    disabled = await capgate(settings, "tools", "disable", "example_echo", "--org", org.name)
    assert disabled.returncode == 0, disabled.stderr
    listed = json.loads((await capgate(settings, "tools", "list", "--org", org.id, "--json")).stdout)
    assert {row["name"]: row["enabled"] for row in listed}["example_echo"] is False
    deadline = time.monotonic() + 10
    while "example_echo" in await tool_names(client, key):  # another process: seen once the cache entry expires
        assert time.monotonic() < deadline, "the server never noticed the CLI's change"
        await _pause()
    enabled = await capgate(settings, "tools", "enable", "example_echo", "--org", org.name)
    assert enabled.returncode == 0, enabled.stderr[-3000:]
    unknown = await capgate(settings, "tools", "disable", "nope", "--org", org.name)
    assert unknown.returncode == 1 and "unknown tool 'nope'" in unknown.stderr


async def _pause() -> None:
    await anyio.sleep(0.05)


@pytest.mark.parametrize("value", ["not a tool", [1, 2]])
def test_entry_points_must_give_tools(value: object) -> None:
    from tools.plugins import _as_tools

    with pytest.raises(TypeError, match="must give a Tool"):
        _as_tools(value, "bad = x:y")


def fake_entry_points(**entries: str) -> Callable[..., list[EntryPoint]]:
    def found(*, group: str) -> list[EntryPoint]:
        return [EntryPoint(name=name, value=value, group=group) for name, value in entries.items()]

    return found


async def test_a_broken_or_shadowing_plugin_is_skipped_and_listed(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        plugins,
        "entry_points",
        fake_entry_points(
            broken="tests.tools.no_such_module:tools",
            impostor="tests.tools.plugin_fixtures:shadowing",
            fine="tests.tools.plugin_fixtures:working",
        ),
    )
    settings = make_settings(tmp_path, sqlite_url)
    await migrate(sqlite_url)
    app = create_app(settings)  # before the fix: the first bad plugin stopped the server here
    async with LifespanManager(app):
        state = app.state.capgate
        keys = KeyFactory(sessions=state.sessions, hasher=state.hasher, verifier=state.verifier)
        org = await keys.organization()
        key = await keys.key(org)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://capgate.test") as client:
            assert {"plugin_fine", "memory_read"} <= await tool_names(client, key)
            await invoke(client, key, "memory_write", {"path": "/a.md", "content": "real"})
            read = await invoke(client, key, "memory_read", {"path": "/a.md"})
            assert read.json()["result"]["content"] == "real"
        listed = await capgate(settings, "tools", "list", "--org", org.id, "--json")
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["plugin_fine"]["enabled"] is True
    assert rows["broken"]["kind"] == "skipped" and "no_such_module" in rows["broken"]["description"]
    skipped_impostor = [row for row in rows.values() if row["kind"] == "skipped" and "memory_read" in row["name"]]
    assert skipped_impostor and "already" in skipped_impostor[0]["description"]


def test_a_tool_registered_after_a_listing_is_listed_and_grant_sets_never_share_an_answer() -> None:
    def principal(scopes: tuple[str, ...], allowed: tuple[str, ...] | None = None) -> Principal:
        return Principal(
            key_id="k", organization_id="o", key_name="n", scopes=scopes, allowed_tools=allowed, expires_at=None
        )

    def tool(name: str, *, read_only: bool) -> Tool:
        return Tool(name=name, description=name, input_model=PassThroughInput, handler=noop, read_only=read_only)

    registry = ToolRegistry([tool("reader", read_only=True), tool("writer", read_only=False)])
    full, read_only, narrowed = principal(("runtime",)), principal(("runtime:read",)), principal(("runtime",), ("w*",))
    for _ in range(2):  # the second round is answered from the registry's cache
        assert [t.name for t in registry.visible(full)] == ["reader", "writer"]
        assert [t.name for t in registry.visible(read_only)] == ["reader"]
        assert [t.name for t in registry.visible(narrowed)] == ["writer"]
        assert [t.name for t in registry.visible(full, frozenset({"writer"}))] == ["reader"]
    registry.register(tool("late", read_only=True))
    assert [t.name for t in registry.visible(read_only)] == ["reader", "late"]


async def noop(_ctx: object, _args: object) -> dict[str, str]:
    return {}
