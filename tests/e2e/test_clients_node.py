"""Real Node MCP clients against a real capgate process: MCP Inspector CLI, mcp-remote (Claude Desktop's
bridge, driven here by the official Python stdio client) and Claude Code's `claude mcp list`.

They run from the project's own cache (tests/e2e/clients/install.sh); `.ci/run` installs it.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from tests.e2e.client_cases import MESSAGES, key_for
from tests.e2e.clients_toolchain import MCP_REMOTE, NODE, NODE_CLIENTS_BIN, node_env, require, snippet
from tests.e2e.conftest import ClientGate
from tests.mcp_helpers import leaf_errors

pytestmark = pytest.mark.e2e
INSPECTOR = NODE_CLIENTS_BIN / "mcp-inspector"
CLAUDE = NODE_CLIENTS_BIN / "claude"


def run(args: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120)


# --- MCP Inspector CLI, through client-configs/mcp-inspector.sh -------------------------------------


def run_inspector_snippet(gate: ClientGate, tmp_path: Path, key: str | None) -> subprocess.CompletedProcess[str]:
    require(NODE, INSPECTOR)
    script = tmp_path / "mcp-inspector.sh"
    script.write_text(snippet("mcp-inspector", gate.server.url))
    env = node_env(tmp_path, MCP_INSPECTOR=str(INSPECTOR))
    if key is not None:
        env["CAPGATE_API_KEY"] = key
    return run(["bash", str(script)], env, tmp_path)


def test_inspector_cli_lists_tools_and_round_trips_memory(client_gate: ClientGate, tmp_path: Path) -> None:
    ran = run_inspector_snippet(client_gate, tmp_path, client_gate.key)
    assert ran.returncode == 0, ran.stderr
    assert '"name": "memory_write"' in ran.stdout and '"name": "memory_read"' in ran.stdout
    assert '"content": "hello from the Inspector"' in ran.stdout


@pytest.mark.parametrize("case", ["wrong", "revoked", "no-runtime"])
def test_inspector_cli_shows_capgates_message(client_gate: ClientGate, tmp_path: Path, case: str) -> None:
    ran = run_inspector_snippet(client_gate, tmp_path, key_for(client_gate, case))
    error = json.loads(ran.stderr.strip().splitlines()[-1])["error"]
    if case == "no-runtime":  # the Inspector reads the 403's WWW-Authenticate header, not the body
        assert ran.returncode == 1
        assert error == {"code": "error", "message": 'Insufficient scope: required "runtime"'}
    else:
        assert ran.returncode == 3
        assert error["code"] == "auth_required"
        assert f'\\"message\\": \\"{MESSAGES[case]}\\"' in json.dumps(error["message"])


def test_inspector_cli_without_a_key_header_shows_missing_key(client_gate: ClientGate, tmp_path: Path) -> None:
    require(NODE, INSPECTOR)
    args = [str(INSPECTOR), "--cli", client_gate.mcp_url, "--transport", "http", "--stored-auth-only"]
    ran = run([*args, "--method", "tools/list"], node_env(tmp_path), tmp_path)
    assert ran.returncode == 3
    assert '\\"message\\": \\"Missing API key\\"' in ran.stderr


def test_inspector_snippet_without_the_variable_stops_before_connecting(
    client_gate: ClientGate, tmp_path: Path
) -> None:
    ran = run_inspector_snippet(client_gate, tmp_path, None)
    assert ran.returncode == 1
    assert "CAPGATE_API_KEY: export CAPGATE_API_KEY first" in ran.stderr


def test_inspector_without_stored_auth_only_asks_for_an_oauth_login(client_gate: ClientGate, tmp_path: Path) -> None:
    require(NODE, INSPECTOR)
    args = [str(INSPECTOR), "--cli", client_gate.mcp_url, "--transport", "http", "--method", "tools/list"]
    ran = run([*args, "--header", f"Authorization: Bearer {client_gate.wrong_key}"], node_env(tmp_path), tmp_path)
    assert ran.returncode != 0
    assert "Interactive OAuth requires a TTY" in ran.stderr  # the README's reason for --stored-auth-only


# --- mcp-remote with client-configs/claude-desktop.json, driven by the official stdio client --------


def desktop_server(gate: ClientGate, home: Path, key: str | None) -> StdioServerParameters:
    """What Claude Desktop starts from the snippet, with npx replaced by the installed mcp-remote."""
    config = json.loads(snippet("claude-desktop", gate.server.url))["mcpServers"]["capgate"]
    assert config["command"] == "npx" and config["args"][:2] == ["-y", "mcp-remote@0.15.1"]
    env = {"HOME": str(home)}  # the snippet's env block, with the key pasted in as the user would
    if key is not None:
        env.update(dict.fromkeys(config["env"], key))
    return StdioServerParameters(command=str(NODE), args=[str(MCP_REMOTE), *config["args"][2:]], env=env)


async def remote_round_trip(gate: ClientGate, home: Path, key: str | None, log: Any) -> list[str]:
    async with Client(stdio_client(desktop_server(gate, home, key), errlog=log)) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        await client.call_tool("memory_write", {"path": "/e2e/remote.md", "content": "hello through mcp-remote"})
        read = await client.call_tool("memory_read", {"path": "/e2e/remote.md"})
        assert "hello through mcp-remote" in read.content[0].text  # type: ignore[union-attr]
        return names


async def test_mcp_remote_bridge_lists_tools_and_round_trips_memory(client_gate: ClientGate, tmp_path: Path) -> None:
    require(NODE, MCP_REMOTE)
    with tempfile.TemporaryFile("w+") as log:
        names = await remote_round_trip(client_gate, tmp_path, client_gate.key, log)
    assert {"memory_write", "memory_read"} <= set(names)


# What Claude Desktop's log for the server (mcp-server-capgate.log) shows; the chat only says it failed.
REJECTED = 'Dynamic Client Registration rejected (HTTP {status}): {{"jsonrpc": "2.0", "id": null, "error": '
REMOTE_LOG = {
    "missing": REJECTED.format(status=401) + '{"code": -32001, "message": "Invalid API key"',
    "wrong": REJECTED.format(status=401) + '{"code": -32001, "message": "Invalid API key"',
    "revoked": REJECTED.format(status=401) + '{"code": -32001, "message": "API key has been revoked"',
    "no-runtime": REJECTED.format(status=403) + '{"code": -32001, "message": "Missing required scope: runtime"',
}


@pytest.mark.parametrize("case", ["missing", "wrong", "revoked", "no-runtime"])
async def test_mcp_remote_logs_capgates_message(client_gate: ClientGate, tmp_path: Path, case: str) -> None:
    require(NODE, MCP_REMOTE)
    with tempfile.TemporaryFile("w+") as log:
        with pytest.raises(BaseException) as raised:
            await remote_round_trip(client_gate, tmp_path, key_for(client_gate, case), log)
        log.seek(0)
        logged = log.read()
    assert [str(e) for e in leaf_errors(raised.value) if isinstance(e, MCPError)] == ["Connection closed"]
    assert REMOTE_LOG[case] in logged
    if case == "missing":  # the variable is unset, so mcp-remote sends the placeholder itself
        assert "Environment variable 'CAPGATE_API_KEY' not found" in logged
    for key in (client_gate.key, client_gate.revoked_key, client_gate.no_runtime_key):
        assert key not in logged


# --- Claude Code: client-configs/claude-code.sh (claude mcp add + claude mcp list) --------------------

CLAUDE_SHOWS = {
    "ok": "- ✔ Connected",
    "wrong": "Server rejected the configured Authorization header (HTTP 401). Check that the token is valid for "
    'this MCP endpoint — OAuth fallback is disabled when headers.Authorization is set. Error detail: {"jsonrpc": '
    '"2.0", "id": null, "error": {"code": -32001, "message": "Invalid API key"',
    "revoked": "(HTTP 401). Check that the token is valid for this MCP endpoint — OAuth fallback is disabled when "
    'headers.Authorization is set. Error detail: {"jsonrpc": "2.0", "id": null, "error": {"code": -32001, '
    '"message": "API key has been revoked"',
    "no-runtime": '- ✘ Failed to connect — Insufficient scope: required "runtime"',
}


@pytest.mark.parametrize("case", ["ok", "wrong", "revoked", "no-runtime"])
def test_claude_code_health_check(client_gate: ClientGate, tmp_path: Path, case: str) -> None:
    require(NODE, CLAUDE)
    script = tmp_path / "claude-code.sh"
    script.write_text(snippet("claude-code", client_gate.server.url))
    key = client_gate.key if case == "ok" else key_for(client_gate, case)
    assert key is not None
    ran = run(["bash", str(script)], node_env(tmp_path / "home", CAPGATE_API_KEY=key), tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert f"capgate: {client_gate.mcp_url} (HTTP) " in ran.stdout
    assert CLAUDE_SHOWS[case] in ran.stdout
    stored = (tmp_path / "home" / ".claude.json").read_text()
    assert '"Authorization": "Bearer ${CAPGATE_API_KEY}"' in stored and key not in stored


def test_claude_code_warns_when_the_variable_is_unset(client_gate: ClientGate, tmp_path: Path) -> None:
    require(NODE, CLAUDE)
    env = node_env(tmp_path / "home")
    header = "Authorization: Bearer ${CAPGATE_API_KEY}"
    added = run(
        [str(CLAUDE), "mcp", "add", "--transport", "http", "capgate", client_gate.mcp_url, "--header", header],
        env,
        tmp_path,
    )
    assert added.returncode == 0, added.stderr
    listed = run([str(CLAUDE), "mcp", "list"], env, tmp_path)
    assert (
        "[capgate] mcpServers.capgate: Missing environment variables: CAPGATE_API_KEY" in listed.stdout + listed.stderr
    )


def test_claude_code_project_mcp_json_connects(client_gate: ClientGate, tmp_path: Path) -> None:
    require(NODE, CLAUDE)
    project, home = tmp_path / "project", tmp_path / "home"
    (project / ".claude").mkdir(parents=True)
    home.mkdir()
    (project / ".mcp.json").write_text(snippet("claude-code-project", client_gate.server.url))
    # What answering Claude Code's trust and approval prompts once records.
    (project / ".claude" / "settings.local.json").write_text(json.dumps({"enabledMcpjsonServers": ["capgate"]}))
    (home / ".claude.json").write_text(json.dumps({"projects": {str(project): {"hasTrustDialogAccepted": True}}}))
    ran = run([str(CLAUDE), "mcp", "list"], node_env(home, CAPGATE_API_KEY=client_gate.key), project)
    assert ran.returncode == 0, ran.stderr
    assert f"capgate: {client_gate.mcp_url} (HTTP) - ✔ Connected" in ran.stdout
