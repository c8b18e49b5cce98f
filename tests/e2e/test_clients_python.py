"""Real Python MCP clients against a real capgate process: list tools, write and read memory, and what
each one shows when the key is missing, wrong, revoked or lacks the runtime scope."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from agents.mcp import MCPServerStreamableHttp
from fastmcp import Client as FastMCPClient
from fastmcp.client.transports import StreamableHttpTransport
from mcp.shared.exceptions import MCPError

from tests.e2e.client_cases import CASES, MESSAGES, key_for
from tests.e2e.clients_toolchain import LANGCHAIN_PYTHON, RUN_SNIPPET, require, snippet
from tests.e2e.conftest import ClientGate
from tests.mcp_helpers import Mode, credential_headers, leaf_errors, mcp_client

pytestmark = pytest.mark.e2e
Session = Callable[[str, str | None], Awaitable[list[str]]]


def text_of(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


async def sdk_round_trip(url: str, key: str | None, mode: Mode) -> list[str]:
    async with mcp_client(url, key, mode=mode) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        path = f"/e2e/sdk-{mode}.md"
        written = await client.call_tool("memory_write", {"path": path, "content": f"hello from the SDK ({mode})"})
        assert not written.is_error, text_of(written)
        read = await client.call_tool("memory_read", {"path": path})
        assert f"hello from the SDK ({mode})" in text_of(read)
        return names


async def fastmcp_round_trip(url: str, key: str | None) -> list[str]:
    async with FastMCPClient(StreamableHttpTransport(url, headers=credential_headers(key, "x-api-key"))) as client:
        names = [tool.name for tool in await client.list_tools()]
        await client.call_tool("memory_write", {"path": "/e2e/fastmcp.md", "content": "hello from fastmcp"})
        read = await client.call_tool("memory_read", {"path": "/e2e/fastmcp.md"})
        assert "hello from fastmcp" in text_of(read)
        return names


async def agents_round_trip(url: str, key: str | None) -> list[str]:
    params: Any = {"url": url, "headers": credential_headers(key)}
    async with MCPServerStreamableHttp(params=params, name="capgate") as server:
        names = [tool.name for tool in await server.list_tools()]
        await server.call_tool("memory_write", {"path": "/e2e/agents.md", "content": "hello from the Agents SDK"})
        read = await server.call_tool("memory_read", {"path": "/e2e/agents.md"})
        assert "hello from the Agents SDK" in text_of(read)
        return names


CLIENTS: dict[str, Session] = {
    "sdk-legacy": lambda url, key: sdk_round_trip(url, key, "legacy"),
    "sdk-stateless": lambda url, key: sdk_round_trip(url, key, "auto"),
    "fastmcp": fastmcp_round_trip,
    "openai-agents": agents_round_trip,
}


@pytest.mark.parametrize("client", CLIENTS)
async def test_client_lists_tools_and_round_trips_memory(client_gate: ClientGate, client: str) -> None:
    names = await CLIENTS[client](client_gate.mcp_url, client_gate.key)
    assert {"memory_write", "memory_read"} <= set(names)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("client", CLIENTS)
async def test_client_shows_capgates_message_for_a_bad_key(client_gate: ClientGate, client: str, case: str) -> None:
    with pytest.raises(BaseException) as raised:  # the SDK wraps it in task-group exception groups
        await CLIENTS[client](client_gate.mcp_url, key_for(client_gate, case))
    shown = [error for error in leaf_errors(raised.value) if isinstance(error, MCPError)]
    assert [str(error) for error in shown] == [MESSAGES[case]]


def run_snippet_cases(python: Path | str, name: str, gate: ClientGate, tmp_path: Path) -> dict[str, Any]:
    """The generated snippet, run by the client's own Python once with the good key and once per bad one."""
    script = tmp_path / f"{name}.py"
    script.write_text(snippet(name, gate.server.url))
    keys = {"ok": gate.key, **{case: key_for(gate, case) for case in CASES}}
    request = json.dumps({"snippet": str(script), "key_env": "CAPGATE_API_KEY", "keys": keys})
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPGATE_")}
    ran = subprocess.run(
        [str(python), str(RUN_SNIPPET)], input=request, env=env, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    assert all(key not in ran.stdout for key in keys.values() if key), "a key was echoed"
    return json.loads(ran.stdout)


def listed_tools(printed: str) -> set[str]:
    line = next(line for line in printed.splitlines() if line.startswith("tools: "))
    return set(line.removeprefix("tools: ").split(", "))


MISSING_VARIABLE = "builtins.KeyError: 'CAPGATE_API_KEY'"
SNIPPETS = {"fastmcp": "hello from fastmcp", "openai-agents": "hello from the Agents SDK"}


@pytest.mark.parametrize("name", SNIPPETS)
def test_the_python_snippet_runs_as_printed_and_ends_on_capgates_message(
    client_gate: ClientGate, name: str, tmp_path: Path
) -> None:
    results = run_snippet_cases(sys.executable, name, client_gate, tmp_path)
    assert results["ok"]["errors"] == []
    assert {"memory_read", "memory_write"} <= listed_tools(results["ok"]["stdout"])
    assert SNIPPETS[name] in results["ok"]["stdout"]
    # With the variable unset the snippet stops before any request, naming the variable.
    assert results["missing"]["errors"] == [MISSING_VARIABLE]
    for case in ["wrong", "revoked", "no-runtime"]:
        assert results[case]["errors"] == [f"mcp.shared.exceptions.MCPError: {MESSAGES[case]}"], case


# mcp 1.x raises on the status before it reads the body, so LangChain users see only the HTTP status.
LANGCHAIN_SHOWS = {
    "wrong": "401 Unauthorized",
    "revoked": "401 Unauthorized",
    "no-runtime": "403 Forbidden",
}


def test_langchain_adapters_in_their_own_venv(client_gate: ClientGate, tmp_path: Path) -> None:
    require(LANGCHAIN_PYTHON)
    results = run_snippet_cases(LANGCHAIN_PYTHON, "langchain", client_gate, tmp_path)
    assert results["ok"]["errors"] == []
    assert {"memory_read", "memory_write"} <= listed_tools(results["ok"]["stdout"])
    assert "hello from LangChain" in results["ok"]["stdout"]
    assert results["missing"]["errors"] == [MISSING_VARIABLE]
    for case in ["wrong", "revoked", "no-runtime"]:
        (error,) = results[case]["errors"]
        assert error.startswith(f"httpx.HTTPStatusError: Client error '{LANGCHAIN_SHOWS[case]}' for url"), error
        assert MESSAGES[case] not in error
